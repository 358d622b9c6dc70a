package node

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/herald-push/herald/config"
)

func TestConnectOptions(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.NATS.URL = " nats://a:4222 , nats://b:4222,"
	c.NATS.User, c.NATS.Password = "u", "p"
	o := nats.GetDefaultOptions()
	for _, opt := range connectOptions(c.NATS, "herald-test") {
		if err := opt(&o); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.NATS.ServerURL(); got != "nats://a:4222,nats://b:4222" {
		t.Errorf("ServerURL() = %q", got)
	}
	if o.Name != "herald-test" || o.MaxReconnect != -1 || o.ReconnectWait != reconnectWait || o.ReconnectJitter != reconnectJitter {
		t.Errorf("options = name %q, max reconnect %d, wait %v, jitter %v", o.Name, o.MaxReconnect, o.ReconnectWait, o.ReconnectJitter)
	}
	if o.User != "u" || o.Password != "p" || o.Token != "" {
		t.Errorf("credentials = %q/%q token %q", o.User, o.Password, o.Token)
	}
	if o.Timeout != c.NATS.Timeout {
		t.Errorf("timeout = %v, want %v", o.Timeout, c.NATS.Timeout)
	}
	if o.PingInterval != 5*time.Second || o.MaxPingsOut != 3 {
		t.Errorf("pings = every %v, %d outstanding; want 5s, 3", o.PingInterval, o.MaxPingsOut)
	}

	c.NATS.User, c.NATS.Token = "", "tok"
	o = nats.GetDefaultOptions()
	for _, opt := range connectOptions(c.NATS, "herald-test") {
		if err := opt(&o); err != nil {
			t.Fatal(err)
		}
	}
	if o.Token != "tok" || o.User != "" {
		t.Errorf("token credentials = %q, user %q", o.Token, o.User)
	}
}
