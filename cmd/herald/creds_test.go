package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/streams"
)

// TestServeNATSRequiresCredentials: serve's embedded NATS server refuses
// anonymous clients, and its producer user may publish to a user's subject
// but neither subscribe to one nor use the JetStream API (SPEC §9).
func TestServeNATSRequiresCredentials(t *testing.T) {
	checkNoLeaks(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := startCmd(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0")
	m := natsRe.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no NATS URL in:\n%s", p.stdout.String())
	}
	url := m[1]
	cr, err := creds.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cr.NATSPassword == "" || cr.ProducerNATSPassword == "" || cr.NATSPassword == cr.ProducerNATSPassword {
		t.Fatalf("credentials file: NATS passwords %q and %q, want two different ones", cr.NATSPassword, cr.ProducerNATSPassword)
	}
	if !strings.Contains(p.stdout.String(), "--nats-password "+cr.ProducerNATSPassword) || strings.Contains(p.stdout.String(), cr.NATSPassword) {
		t.Errorf("serve prints the service user's password, or not the producer's:\n%s", p.stdout.String())
	}

	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"wrong password", []nats.Option{nats.UserInfo(creds.ProducerUser, "wrong")}},
	} {
		nc, err := nats.Connect(url, append(tc.opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", tc.name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", tc.name, err)
		}
	}

	errs := make(chan error, 8)
	nc, err := nats.Connect(url, nats.UserInfo(creds.ProducerUser, cr.ProducerNATSPassword), nats.NoReconnect(),
		nats.CustomInboxPrefix(streams.ProducerInbox),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("producer user: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, streams.Subjects{}.User("alice"), []byte(`{"id":"p-1","user":"alice","body":"hi","time":"2026-01-01T00:00:00Z"}`))
	if err != nil || ack.Stream != "HERALD" {
		t.Fatalf("producer publish to alice's subject: %+v, %v", ack, err)
	}
	if _, err := nc.SubscribeSync(streams.Subjects{}.User("bob")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("producer subscribing to bob's subject: %v, want a permissions violation", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("producer subscribed to bob's subject without a permissions violation")
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if err := js.DeleteStream(dctx, "HERALD"); err == nil {
		t.Error("the producer user deleted the stream")
	}

	// The stream is still there, as the service user sees it.
	svc, err := nats.Connect(url, nats.UserInfo(creds.ServiceUser, cr.NATSPassword))
	if err != nil {
		t.Fatalf("service user: %v", err)
	}
	defer svc.Close()
	sjs, err := jetstream.New(svc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sjs.Stream(ctx, "HERALD"); err != nil {
		t.Errorf("stream after the producer's delete: %v", err)
	}
}
