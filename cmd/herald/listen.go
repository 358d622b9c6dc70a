package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/edge/client"
	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/streams"
)

// defaultListenURL is where herald listen connects by default.
const defaultListenURL = "ws://127.0.0.1:8080"

// listenTokenTTL is the lifetime of the tokens listen mints itself.
const listenTokenTTL = time.Hour

func newListenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "listen --user U --device D",
		Short: "Subscribe as a device: print messages, ack them, resume after reconnects",
		Long: `Connect to the edge WebSocket (/v1/ws) as one device of a user. Each message is
printed as one line (seq, title, body, tab-separated), acked, and its seq saved
in the state file, so that a reconnect (exponential backoff with jitter,
100ms to 30s) or a restart resumes with since=<last seq>.

An update or a delete of an earlier message has a fourth column, "update <id>"
or "delete <id>". When another device of the user marks messages read, a line
"read", the seq and that device is printed.

The token is --token, else one minted with auth.jwt_secret (HERALD_JWT_SECRET)
or the secret herald serve generated in <data-dir>/credentials.json, minted
again before it expires. It stops with an error when the server refuses the
token (401, or close code 4001 with an expired --token), and with exit code 0
on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			user, _ := fl.GetString("user")
			device, _ := fl.GetString("device")
			rawURL, _ := fl.GetString("url")
			tok, _ := fl.GetString("token")
			state, _ := fl.GetString("state")
			if err := streams.ValidateUser(user); err != nil {
				return fmt.Errorf("cmd: listen: %w", err)
			}
			if err := streams.ValidateDevice(device); err != nil {
				return fmt.Errorf("cmd: listen: %w", err)
			}
			if state == "" {
				state = defaultStatePath(user, device)
			}
			l := &listener{
				baseURL:   rawURL,
				user:      user,
				device:    device,
				statePath: state,
				out:       a.stdout,
				log:       newLogger(cfg.Log, a.stderr).With("component", "listen", "user", user, "device", device),
			}
			// The client checks --url before a missing secret is reported;
			// it calls l.token only once it runs.
			c, err := l.client()
			if err != nil {
				return err
			}
			if tok != "" {
				l.token = func() (string, error) { return tok, nil }
			} else {
				secret, err := creds.JWTSecret(&cfg)
				if err != nil {
					return fmt.Errorf("%w (or pass --token)", err)
				}
				l.token = func() (string, error) { return token.Mint(secret, user, device, listenTokenTTL) }
			}
			return l.run(cmd.Context(), c)
		},
	}
	fl := cmd.Flags()
	fl.String("user", "", "user id")
	fl.String("device", "", "device id (A-Z a-z 0-9 _ . : -)")
	fl.String("url", defaultListenURL, "base URL of the edge (ws://, wss://, http:// or https://)")
	fl.String("token", "", "client JWT (default: mint one with the JWT secret)")
	fl.String("state", "", "state file holding the last seq (default .herald-listen-<user token>-<device>.json)")
	_ = cmd.MarkFlagRequired("user")
	_ = cmd.MarkFlagRequired("device")
	return cmd
}

// defaultStatePath is .herald-listen-<user token>-<device>.json in the
// current directory; a name too long for a file system uses a hash instead.
func defaultStatePath(user, device string) string {
	name := streams.Token(user) + "-" + device
	if len(name) > 160 {
		h := sha256.Sum256([]byte(user + "\x00" + device))
		name = hex.EncodeToString(h[:12])
	}
	return ".herald-listen-" + name + ".json"
}

// listener is herald listen: an edge/client.Client that prints each
// message and marks it processed once printed.
type listener struct {
	baseURL   string
	user      string
	device    string
	token     func() (string, error)
	statePath string
	out       io.Writer
	outMu     sync.Mutex // messages and read events print from two goroutines
	log       *slog.Logger

	// Zero values take the client's defaults.
	minBackoff, maxBackoff time.Duration
}

// Run prints messages until ctx ends (nil) or the client stops for good
// (an error).
func (l *listener) Run(ctx context.Context) error {
	c, err := l.client()
	if err != nil {
		return err
	}
	return l.run(ctx, c)
}

func (l *listener) client() (*client.Client, error) {
	c, err := client.New(client.Options{
		URLs:       []string{l.baseURL},
		Device:     l.device,
		Token:      func(context.Context) (string, error) { return l.token() },
		Store:      &client.FileStore{Path: l.statePath, User: l.user, Device: l.device},
		Logger:     l.log,
		OnEvent:    l.event,
		MinBackoff: l.minBackoff,
		MaxBackoff: l.maxBackoff,
	})
	if err != nil {
		return nil, fmt.Errorf("cmd: listen: %w", err)
	}
	return c, nil
}

func (l *listener) run(ctx context.Context, c *client.Client) error {
	err := c.Each(ctx, func(m client.Message) error {
		text := m.Body
		if text == "" && len(m.Data) > 0 {
			text = string(m.Data)
		}
		line := fmt.Sprintf("%d\t%s\t%s", m.Seq, oneLine(m.Title), oneLine(text))
		if m.Op != "" {
			line += "\t" + m.Op + " " + m.Ref
		}
		return l.println(line)
	})
	if err != nil {
		return fmt.Errorf("cmd: listen: %w", err)
	}
	return nil
}

// event prints read events; on the client's goroutine.
func (l *listener) event(e client.Event) {
	if e.Kind == client.EventRead {
		_ = l.println(fmt.Sprintf("read\t%d\t%s", e.Seq, e.Device))
	}
}

func (l *listener) println(line string) error {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	_, err := fmt.Fprintln(l.out, line)
	return err
}

// oneLine keeps a message on one output line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`, "\t", " ").Replace(s)
}
