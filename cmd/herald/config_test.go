package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/edge/token"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence checks YAML file < environment < flags through real
// commands: --set (subject's prefix) and a named flag (token's data dir).
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	yml := writeFile(t, "herald.yaml", "stream:\n  prefix: fromyaml\n")
	env := []string{"HERALD_STREAM_PREFIX=fromenv", "PATH=/usr/bin"}
	cases := []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"default", nil, nil, "herald.user.alice"},
		{"yaml", nil, []string{"--config", yml}, "fromyaml.user.alice"},
		{"env over yaml", env, []string{"--config", yml}, "fromenv.user.alice"},
		{"flag over env", env, []string{"--config", yml, "--set", "stream.prefix=fromflag"}, "fromflag.user.alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCmd(t, tc.environ, append([]string{"subject", "alice"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(out); got != tc.want {
				t.Errorf("subject = %q, want %q", got, tc.want)
			}
		})
	}

	// A named flag: --data-dir picks the credentials `herald token` signs with.
	dirs := map[string]string{}
	secrets := map[string]string{}
	for _, n := range []string{"yaml", "env", "flag"} {
		dirs[n] = t.TempDir()
		c, _, err := creds.LoadOrCreate(dirs[n], creds.Need{Key: true, Secret: true})
		if err != nil {
			t.Fatal(err)
		}
		secrets[n] = c.JWTSecret
	}
	yml2 := writeFile(t, "herald.yaml", "data_dir: "+dirs["yaml"]+"\n")
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"yaml", nil, []string{"--config", yml2}, "yaml"},
		{"env over yaml", []string{"HERALD_DATA_DIR=" + dirs["env"]}, []string{"--config", yml2}, "env"},
		{"flag over env", []string{"HERALD_DATA_DIR=" + dirs["env"]}, []string{"--config", yml2, "--data-dir", dirs["flag"]}, "flag"},
	} {
		t.Run("data_dir "+tc.name, func(t *testing.T) {
			out, _, err := runCmd(t, tc.environ, append([]string{"token", "--user", "alice"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			v, err := token.New(config.Auth{JWTSecret: secrets[tc.want]})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(strings.TrimSpace(out)); err != nil {
				t.Errorf("token does not verify with the %s data dir's secret: %v", tc.want, err)
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		environ []string
		args    []string
		want    string // in the error
	}{
		{"yaml value", nil, []string{"--config", writeFile(t, "a.yaml", "stream:\n  replicas: 9\n")}, "stream.replicas"},
		{"yaml unknown key", nil, []string{"--config", writeFile(t, "b.yaml", "edge:\n  ack_wiat: 5s\n")}, "ack_wiat"},
		{"missing file", nil, []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, "none.yaml"},
		{"env value", []string{"HERALD_EDGE_ACK_WAIT=soon"}, nil, "edge.ack_wait"},
		{"env unknown", []string{"HERALD_NOPE=1"}, nil, "HERALD_NOPE"},
		{"flag value", nil, []string{"--replicas", "0"}, "stream.replicas"},
		{"flag not a number", nil, []string{"--new-device-backlog", "many"}, "edge.new_device_backlog"},
		{"delivery", nil, []string{"--delivery", "carrier-pigeon"}, "edge.delivery"},
		{"set unknown", nil, []string{"--set", "edge.nope=1"}, `unknown setting "edge.nope"`},
		{"set malformed", nil, []string{"--set", "edge.ack_wait"}, "want path=value"},
		{"log level", nil, []string{"--log-level", "loud"}, "log.level"},
		{"nats listen", nil, []string{"--nats-listen", "4222"}, "nats.embedded_listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, tc.environ, append([]string{"subject", "alice"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	user := "a.b*c>d"
	tok := "~" + base64.RawURLEncoding.EncodeToString([]byte(user))
	out, _, err := runCmd(t, nil, "subject", user)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out), "herald.user."+tok; got != want {
		t.Errorf("subject %q = %q, want %q", user, got, want)
	}
	out, _, err = runCmd(t, nil, "subject", "--token-only", user)
	if err != nil || strings.TrimSpace(out) != tok {
		t.Errorf("subject --token-only = %q, %v; want %q", out, err, tok)
	}
	out, _, err = runCmd(t, nil, "subject", "alice_01-x")
	if err != nil || strings.TrimSpace(out) != "herald.user.alice_01-x" {
		t.Errorf("subject alice_01-x = %q, %v", out, err)
	}
	for _, bad := range []string{"", "tab\there", strings.Repeat("x", 257)} {
		if _, _, err := runCmd(t, nil, "subject", bad); err == nil || !strings.Contains(err.Error(), "invalid user") {
			t.Errorf("subject %q: error = %v, want invalid user", bad, err)
		}
	}
	if _, _, err := runCmd(t, nil, "subject"); err == nil {
		t.Error("subject without a user: no error")
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	const secret = "token-test-secret-0123456789abcdef"
	out, _, err := runCmd(t, []string{"HERALD_JWT_SECRET=" + secret}, "token", "--user", "alice", "--device", "laptop", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.New(config.Auth{JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	g, err := v.Verify(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if g.User != "alice" || g.Device != "laptop" {
		t.Errorf("grant = %+v", g)
	}
	if d := time.Until(g.Expires); d < 58*time.Minute || d > time.Hour+time.Second {
		t.Errorf("token expires in %v, want about 1h", d)
	}

	errCases := []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"no secret", nil, []string{"--user", "alice", "--data-dir", t.TempDir()}, "auth.jwt_secret"},
		{"no user", []string{"HERALD_JWT_SECRET=" + secret}, nil, `"user" not set`},
		{"bad device", []string{"HERALD_JWT_SECRET=" + secret}, []string{"--user", "alice", "--device", "a b"}, "invalid device"},
		{"bad ttl", []string{"HERALD_JWT_SECRET=" + secret}, []string{"--user", "alice", "--ttl", "0s"}, "--ttl"},
		{"ttl over auth.max_token_ttl", []string{"HERALD_JWT_SECRET=" + secret}, []string{"--user", "alice", "--ttl", "721h"}, "auth.max_token_ttl"},
		{"ttl over a configured max", []string{"HERALD_JWT_SECRET=" + secret, "HERALD_AUTH_MAX_TOKEN_TTL=1h"}, []string{"--user", "alice", "--ttl", "2h"}, "auth.max_token_ttl"},
		{"weak secret", []string{"HERALD_JWT_SECRET=a"}, []string{"--user", "alice"}, "auth.jwt_secret"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCmd(t, tc.environ, append([]string{"token"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, err := runCmd(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "herald dev") {
		t.Fatalf("version = %q, %v", out, err)
	}
}
