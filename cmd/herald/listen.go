package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/spf13/cobra"

	"github.com/herald-push/herald/edge/token"
	"github.com/herald-push/herald/ingest/apierr"
	"github.com/herald-push/herald/streams"
)

// defaultListenURL is where herald listen connects by default.
const defaultListenURL = "ws://127.0.0.1:8080"

// Reconnect backoff of herald listen: exponential with jitter.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 30 * time.Second
	// listenIdleTimeout closes a connection that got nothing (the server
	// pings every 30 s by default) for this long.
	listenIdleTimeout = 90 * time.Second
	// listenTokenTTL is the lifetime of the tokens listen mints itself.
	listenTokenTTL = time.Hour
)

func newListenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "listen --user U --device D",
		Short: "Subscribe as a device: print messages, ack them, resume after reconnects",
		Long: `Connect to the edge WebSocket (/v1/ws) as one device of a user. Each message is
printed as one line (seq, title, body, tab-separated), acked, and its seq saved
in the state file, so that a reconnect (exponential backoff with jitter,
100ms to 30s) or a restart resumes with since=<last seq>.

The token is --token, else one minted per connect with auth.jwt_secret
(HERALD_JWT_SECRET) or the secret herald serve generated in
<data-dir>/credentials.json. It stops with an error when the server refuses the
token (401, or close code 4001 with a fixed --token), and with exit code 0 on
SIGINT or SIGTERM.`,
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
			base, err := wsBaseURL(rawURL)
			if err != nil {
				return err
			}
			if state == "" {
				state = defaultStatePath(user, device)
			}
			l := &listener{
				baseURL:   base,
				user:      user,
				device:    device,
				statePath: state,
				out:       a.stdout,
				log:       newLogger(cfg.Log, a.stderr).With("component", "listen", "user", user, "device", device),
			}
			if tok != "" {
				l.token = func() (string, error) { return tok, nil }
			} else {
				secret, err := jwtSecret(&cfg)
				if err != nil {
					return fmt.Errorf("%w (or pass --token)", err)
				}
				l.renewable = true
				l.token = func() (string, error) { return token.Mint(secret, user, device, listenTokenTTL) }
			}
			return l.Run(cmd.Context())
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

// wsBaseURL turns a base URL into a ws:// or wss:// one without a trailing
// slash.
func wsBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("cmd: listen: --url %q is not a URL like ws://127.0.0.1:8080", raw)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("cmd: listen: --url %q: scheme must be ws, wss, http or https", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// listener is the client of herald listen. Run owns every goroutine it
// starts and returns after they have stopped.
type listener struct {
	baseURL   string // ws://host:port
	user      string
	device    string
	token     func() (string, error) // called before each connect
	renewable bool                   // token mints fresh ones: a 4001 (expiry) is retried
	statePath string
	out       io.Writer
	log       *slog.Logger

	// Zero values take the listen* defaults.
	minBackoff, maxBackoff time.Duration
	idleTimeout            time.Duration
}

// listenState is the state file: the last seq printed and acked.
type listenState struct {
	User   string `json:"user"`
	Device string `json:"device"`
	Seq    uint64 `json:"seq"`
}

// fatalError ends Run: the server refused us in a way a retry cannot fix.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

// Run connects, prints and acks until ctx ends (nil) or the server refuses
// the client for good (an error). Between connections it waits with
// exponential backoff and jitter; a connection that got its welcome
// resets the backoff.
func (l *listener) Run(ctx context.Context) error {
	minB, maxB := cmpOr(l.minBackoff, listenMinBackoff), cmpOr(l.maxBackoff, listenMaxBackoff)
	st, err := l.loadState()
	if err != nil {
		return err
	}
	attempt := 0
	for {
		welcomed, err := l.session(ctx, &st)
		if ctx.Err() != nil {
			return nil
		}
		var fatal fatalError
		if errors.As(err, &fatal) {
			return fmt.Errorf("cmd: listen: %w", fatal.err)
		}
		if welcomed {
			attempt = 0
		}
		d := backoff(attempt, minB, maxB)
		attempt++
		l.log.Warn("disconnected; reconnecting", "err", err, "in", d.Round(time.Millisecond), "since", st.Seq)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// backoff is min·2^attempt capped at max, drawn uniformly from its upper
// half so that clients do not reconnect in lockstep.
func backoff(attempt int, minB, maxB time.Duration) time.Duration {
	d := maxB
	if attempt < 30 {
		d = min(minB<<attempt, maxB)
	}
	half := d / 2
	return half + rand.N(half+1)
}

func (l *listener) loadState() (listenState, error) {
	st := listenState{User: l.user, Device: l.device}
	b, err := os.ReadFile(l.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("cmd: listen: state: %w", err)
	}
	var saved listenState
	if err := json.Unmarshal(b, &saved); err != nil {
		return st, fmt.Errorf("cmd: listen: state %s: %w", l.statePath, err)
	}
	if saved.User != l.user || saved.Device != l.device {
		return st, fmt.Errorf("cmd: listen: state %s belongs to user %q device %q; pass another --state", l.statePath, saved.User, saved.Device)
	}
	return saved, nil
}

func (l *listener) saveState(st *listenState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.statePath, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("cmd: listen: save state: %w", err)
	}
	return nil
}

// serverFrame is any server → client frame (SPEC §6).
type serverFrame struct {
	Type string `json:"type"`
	// welcome
	From *uint64 `json:"from"`
	Gap  bool    `json:"gap"`
	// message and synced
	Seq   uint64          `json:"seq"`
	Title string          `json:"title"`
	Body  string          `json:"body"`
	Data  json.RawMessage `json:"data"`
	// error
	Code    string `json:"code"`
	Message string `json:"message"`
}

// session runs one connection. welcomed reports whether the server's
// welcome arrived, which resets the backoff.
func (l *listener) session(ctx context.Context, st *listenState) (welcomed bool, err error) {
	tok, err := l.token()
	if err != nil {
		return false, fatalError{fmt.Errorf("token: %w", err)}
	}
	q := url.Values{"device": {l.device}}
	if st.Seq > 0 {
		q.Set("since", strconv.FormatUint(st.Seq, 10))
	}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	conn, resp, err := dialer.DialContext(ctx, l.baseURL+"/v1/ws?"+q.Encode(), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		return false, dialError(resp, err)
	}
	defer conn.Close()

	// On ctx's end, say goodbye and unblock the reader. WriteControl and
	// Close may run concurrently with the reader's writes.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
			_ = conn.Close()
		case <-stop:
		}
	}()
	defer func() { close(stop); <-done }()

	idleTimeout := cmpOr(l.idleTimeout, listenIdleTimeout)
	idle := func() { _ = conn.SetReadDeadline(time.Now().Add(idleTimeout)) }
	idle()
	conn.SetPingHandler(func(data string) error {
		idle()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	conn.SetReadLimit(8 << 20)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == 4001 && !l.renewable {
				return welcomed, fatalError{fmt.Errorf("the server closed with 4001 (unauthorized or token expired): %s", ce.Text)}
			}
			return welcomed, err
		}
		idle()
		var f serverFrame
		if err := json.Unmarshal(data, &f); err != nil {
			l.log.Warn("ignoring a frame that is not JSON", "err", err)
			continue
		}
		switch f.Type {
		case "welcome":
			welcomed = true
			from := "nothing yet"
			if f.From != nil {
				from = strconv.FormatUint(*f.From, 10)
			}
			l.log.Info("connected", "from", from, "since", st.Seq)
			if f.Gap {
				l.log.Warn("gap: messages after the requested position were removed by retention", "since", st.Seq)
			}
		case "message":
			if err := l.deliver(conn, st, &f); err != nil {
				return welcomed, err
			}
		case "synced":
			l.log.Info("synced", "seq", f.Seq)
		case "error":
			l.log.Warn("server error", "code", f.Code, "message", f.Message)
		}
	}
}

// deliver prints a message (once: a seq at or below the last one is a
// redelivery), saves its seq and acks it.
func (l *listener) deliver(conn *websocket.Conn, st *listenState, f *serverFrame) error {
	if f.Seq > st.Seq {
		text := f.Body
		if text == "" && len(f.Data) > 0 {
			text = string(f.Data)
		}
		if _, err := fmt.Fprintf(l.out, "%d\t%s\t%s\n", f.Seq, oneLine(f.Title), oneLine(text)); err != nil {
			return fatalError{fmt.Errorf("print: %w", err)}
		}
		st.Seq = f.Seq
		if err := l.saveState(st); err != nil {
			return fatalError{err}
		}
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return conn.WriteJSON(map[string]any{"type": "ack", "seq": f.Seq})
}

// oneLine keeps a message on one output line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`, "\t", " ").Replace(s)
}

// dialError classifies a failed handshake: a 4xx other than 408 and 429
// (bad token, bad device) will not heal by retrying.
func dialError(resp *http.Response, err error) error {
	if resp == nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := resp.Status
	var eb apierr.Body
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		msg = fmt.Sprintf("%s: %s: %s", resp.Status, eb.Error.Code, eb.Error.Message)
	}
	err = fmt.Errorf("handshake: %s: %w", msg, err)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return fatalError{err}
	}
	return err
}
