package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// embeddedReadyTimeout bounds the start of serve's embedded NATS server.
const embeddedReadyTimeout = 15 * time.Second

// embeddedOptions returns the options of serve's embedded NATS server:
// JetStream with its store in <data-dir>/nats, the client port at
// nats.embedded_listen ("off": no port, in-process clients only; port 0: a
// free port), no signal handlers, JetStream's fsync policy from
// nats.sync_interval, and no anonymous clients: nats.token, or the user
// nats.user (any subject) plus producer when it has a name (publish to
// users' subjects, subscribe to its own inbox, nothing else).
func embeddedOptions(cfg *config.Config, producer natsUser) (*server.Options, error) {
	syncInterval, syncAlways, err := cfg.NATS.Sync()
	if err != nil {
		return nil, fmt.Errorf("cmd: nats.sync_interval: %w", err)
	}
	o := &server.Options{
		ServerName: "herald",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		// The stored envelope is bounded by ingest.max_message_bytes; NATS
		// must carry it with its headers.
		MaxPayload: int32(max(1<<20, cfg.Ingest.MaxMessageBytes+8<<10)),
		// For "always" the interval is 0, which nats-server replaces with
		// its default background interval, as its own config file does.
		SyncInterval: syncInterval,
		SyncAlways:   syncAlways,
	}
	if cfg.NATS.Embedded == "off" {
		o.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.NATS.Embedded)
		if err != nil {
			return nil, fmt.Errorf("cmd: nats.embedded_listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("cmd: nats.embedded_listen %q: bad port", cfg.NATS.Embedded)
		}
		if p == 0 {
			p = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
		}
		if host == "" {
			host = "0.0.0.0"
		}
		o.Host, o.Port = host, p
	}
	switch {
	case cfg.NATS.Token != "":
		o.Authorization = cfg.NATS.Token
	case cfg.NATS.User != "":
		svc, err := bcryptPassword(cfg.NATS.Password)
		if err != nil {
			return nil, err
		}
		o.Users = []*server.User{{Username: cfg.NATS.User, Password: svc}}
		if producer.name != "" {
			prod, err := bcryptPassword(producer.password)
			if err != nil {
				return nil, err
			}
			sub := streams.Subjects{Prefix: cfg.Stream.Prefix}
			o.Users = append(o.Users, &server.User{
				Username: producer.name,
				Password: prod,
				Permissions: &server.Permissions{
					Publish:   &server.SubjectPermission{Allow: []string{strings.TrimSuffix(sub.AllUsers(), "*") + ">"}},
					Subscribe: &server.SubjectPermission{Allow: []string{streams.ProducerInbox + ".>"}},
				},
			})
		}
	default:
		return nil, fmt.Errorf("cmd: embedded nats: no credentials for its clients (nats.token or nats.user)")
	}
	return o, nil
}

// bcryptPassword is the form of a password the server keeps (it warns about
// plain ones). The passwords are random or the operator's; the lowest cost
// keeps each client's authentication cheap. bcrypt takes at most 72 bytes:
// a longer password stays plain.
func bcryptPassword(p string) (string, error) {
	if len(p) > 72 {
		return p, nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("cmd: embedded nats: password: %w", err)
	}
	return string(h), nil
}

// startEmbedded starts the embedded server and waits until it takes
// clients. The caller owns it: Shutdown and WaitForShutdown.
func startEmbedded(cfg *config.Config, producer natsUser, log *slog.Logger) (*server.Server, error) {
	opts, err := embeddedOptions(cfg, producer)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cmd: embedded nats: %w", err)
	}
	nl := &natsLogger{log: log.With("component", "nats-server"), subjects: streams.Subjects{Prefix: cfg.Stream.Prefix}}
	srv.SetLoggerV2(nl, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(embeddedReadyTimeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		cause := nl.lastError()
		if cause == "" {
			cause = fmt.Sprintf("not ready within %v", embeddedReadyTimeout)
		}
		return nil, fmt.Errorf("cmd: embedded nats (nats.embedded_listen %s, store %s): %s", cfg.NATS.Embedded, opts.StoreDir, cause)
	}
	return srv, nil
}

// natsLogger passes the embedded server's log to slog: notices at debug
// level (startup is chatty), warnings and errors as such, with the user
// tokens of Herald's subjects replaced by their hash. It remembers the last
// error so that a failed start can say why.
type natsLogger struct {
	log      *slog.Logger
	subjects streams.Subjects
	mu       sync.Mutex
	last     string
}

var _ server.Logger = (*natsLogger)(nil)

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(l.text(format, v)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(l.text(format, v)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.errorf(format, v...) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.errorf(format, v...) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(l.text(format, v)) }
func (l *natsLogger) Tracef(format string, v ...any)  {}

func (l *natsLogger) text(format string, v []any) string {
	return l.subjects.LogSubjects(fmt.Sprintf(format, v...))
}

func (l *natsLogger) errorf(format string, v ...any) {
	msg := l.text(format, v)
	l.mu.Lock()
	l.last = msg
	l.mu.Unlock()
	l.log.Error(msg)
}

func (l *natsLogger) lastError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}
