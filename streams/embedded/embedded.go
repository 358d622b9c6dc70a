// Package embedded runs the NATS server with JetStream that herald serve
// (and herald bench in-process) keeps inside the process: its store, client
// port, fsync policy and users. Its users follow the subject scheme of
// package streams: the service user may do anything, the producer user may
// only publish to users' subjects and read its own reply inbox
// (streams.ProducerInbox). It lives next to streams because it is that
// layout's server: the permissions are written from streams' subjects.
//
// Start returns a running server; the caller owns it and stops it with
// Shutdown and WaitForShutdown. The server's goroutines are its own.
package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/herald-push/herald/streams"
)

// readyTimeout bounds the start of the server.
const readyTimeout = 15 * time.Second

// User is a user of the server.
type User struct {
	Name, Password string
}

// Options configure the server.
type Options struct {
	StoreDir string // JetStream's store
	// Listen is the client port's host:port: "off" for none (in-process
	// clients only), port 0 for a free port, an empty host for every
	// interface.
	Listen string
	// SyncInterval and SyncAlways are JetStream's fsync policy. For
	// "always" the interval is 0, which nats-server replaces with its
	// default background interval, as its own config file does.
	SyncInterval time.Duration
	SyncAlways   bool
	// MaxMessageBytes is the largest stored envelope; NATS must carry it
	// with its headers.
	MaxMessageBytes int
	// Token, when set, is the only credential the server takes. Else
	// Service (any subject) and Producer (publish to users' subjects
	// only; none when its Name is empty) are its users. One of Token and
	// Service is required: the server takes no anonymous clients.
	Token    string
	Service  User
	Producer User
	Subjects streams.Subjects // the subject prefix of the producer's permissions
	Logger   *slog.Logger     // nil discards the server's log
}

// ServerOptions returns the nats-server options of o: JetStream, no signal
// handlers, no anonymous clients.
func ServerOptions(o Options) (*server.Options, error) {
	so := &server.Options{
		ServerName:   "herald",
		JetStream:    true,
		StoreDir:     o.StoreDir,
		NoSigs:       true,
		MaxPayload:   int32(max(1<<20, o.MaxMessageBytes+8<<10)),
		SyncInterval: o.SyncInterval,
		SyncAlways:   o.SyncAlways,
	}
	if o.Listen == "off" {
		so.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded: listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("embedded: listen %q: bad port", o.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
		}
		if host == "" {
			host = "0.0.0.0"
		}
		so.Host, so.Port = host, p
	}
	switch {
	case o.Token != "":
		so.Authorization = o.Token
	case o.Service.Name != "":
		svc, err := bcryptPassword(o.Service.Password)
		if err != nil {
			return nil, err
		}
		so.Users = []*server.User{{Username: o.Service.Name, Password: svc}}
		if o.Producer.Name != "" {
			prod, err := bcryptPassword(o.Producer.Password)
			if err != nil {
				return nil, err
			}
			so.Users = append(so.Users, &server.User{
				Username: o.Producer.Name,
				Password: prod,
				Permissions: &server.Permissions{
					Publish:   &server.SubjectPermission{Allow: []string{strings.TrimSuffix(o.Subjects.AllUsers(), "*") + ">"}},
					Subscribe: &server.SubjectPermission{Allow: []string{streams.ProducerInbox + ".>"}},
				},
			})
		}
	default:
		return nil, errors.New("embedded: no credentials for its clients (a token or a service user)")
	}
	return so, nil
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
		return "", fmt.Errorf("embedded: password: %w", err)
	}
	return string(h), nil
}

// Start starts the server and waits until it takes clients.
func Start(o Options) (*server.Server, error) {
	so, err := ServerOptions(o)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nl := &natsLogger{log: log.With("component", "nats-server"), subjects: o.Subjects}
	srv.SetLoggerV2(nl, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		cause := nl.lastError()
		if cause == "" {
			cause = fmt.Sprintf("not ready within %v", readyTimeout)
		}
		return nil, fmt.Errorf("embedded: nats (listen %s, store %s): %s", o.Listen, o.StoreDir, cause)
	}
	return srv, nil
}

// natsLogger passes the server's log to slog: notices at debug level
// (startup is chatty), warnings and errors as such, with the user tokens of
// Herald's subjects replaced by their hash. It remembers the last error so
// that a failed start can say why.
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
