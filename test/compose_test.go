package test

// Docker is not needed to check the compose deployment's wiring: this test
// parses docker-compose.yml, the NATS config (with the nats-server parser),
// the Caddyfile and the Dockerfile, and applies each Herald service's
// environment to the real configuration loader. compose_run_test.go runs it.

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams"
)

// repoRoot is where docker-compose.yml lives: the parent of test/.
const repoRoot = ".."

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       yaml.Node         `yaml:"build"` // a path or {context, dockerfile}
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   yaml.Node         `yaml:"depends_on"` // a list or a map with conditions
	Ports       []string          `yaml:"ports"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

// buildContext returns the service's build context and Dockerfile, or ""
// when it has no build.
func (s composeService) buildContext(t *testing.T) (dir, dockerfile string) {
	t.Helper()
	switch s.Build.Kind {
	case 0:
		return "", ""
	case yaml.ScalarNode:
		return s.Build.Value, "Dockerfile"
	case yaml.MappingNode:
		var b struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		}
		if err := s.Build.Decode(&b); err != nil {
			t.Fatal(err)
		}
		if b.Dockerfile == "" {
			b.Dockerfile = "Dockerfile"
		}
		return b.Context, b.Dockerfile
	}
	t.Fatalf("build: unexpected YAML %v", s.Build.Kind)
	return "", ""
}

// dependsOn maps each dependency to its condition ("" for the list form).
func (s composeService) dependsOn(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		var l []string
		if err := s.DependsOn.Decode(&l); err != nil {
			t.Fatal(err)
		}
		for _, d := range l {
			out[d] = ""
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := s.DependsOn.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for d, c := range m {
			out[d] = c.Condition
		}
	}
	return out
}

// mounts returns the bind mounts from the repository (source → target)
// and the named volumes used.
func (s composeService) mounts() (binds map[string]string, named []string) {
	binds = map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/") {
			binds[parts[0]] = parts[1]
		} else {
			named = append(named, parts[0])
		}
	}
	return binds, named
}

// interpolate resolves ${NAME:-default} and ${NAME} the way compose does
// with an empty environment.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

func interpolate(s string) string {
	return composeVar.ReplaceAllString(s, "$2")
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		dir, dockerfile := s.buildContext(t)
		if s.Image == "" && dir == "" {
			t.Errorf("service %s has neither image nor build", name)
		}
		if dir != "" {
			if _, err := os.Stat(filepath.Join(repoRoot, dir, dockerfile)); err != nil {
				t.Errorf("service %s: build context %s has no %s: %v", name, dir, dockerfile, err)
			}
		}
		binds, named := s.mounts()
		for src := range binds {
			if filepath.IsAbs(src) {
				t.Errorf("service %s mounts an absolute path %s", name, src)
				continue
			}
			if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
				t.Errorf("service %s mounts %s, which is not in the repository: %v", name, src, err)
			}
		}
		for _, v := range named {
			if _, ok := c.Volumes[v]; !ok {
				t.Errorf("service %s uses volume %s, not declared under volumes", name, v)
			}
		}
		for dep := range s.dependsOn(t) {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
	}
	var public []string
	for name, s := range c.Services {
		if len(s.Ports) > 0 {
			public = append(public, name)
		}
	}
	if len(public) != 1 || public[0] != "lb" {
		t.Errorf("services publishing ports: %v, want only lb", public)
	}
}

// natsServices are the services running the official nats image.
func natsServices(c composeFile) []string {
	var out []string
	for name, s := range c.Services {
		if strings.HasPrefix(interpolate(s.Image), "nats:") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func TestComposeNATSCluster(t *testing.T) {
	c := loadCompose(t)
	nodes := natsServices(c)
	if len(nodes) != 3 {
		t.Fatalf("nats services = %v, want 3", nodes)
	}
	names := map[string]bool{}
	for _, node := range nodes {
		s := c.Services[node]
		binds, named := s.mounts()
		if len(named) != 1 {
			t.Errorf("%s: named volumes %v, want one for its store", node, named)
		}
		var confPath string
		for src, dst := range binds {
			if i := slices.Index(s.Command, dst); i > 0 && s.Command[i-1] == "--config" {
				confPath = filepath.Join(repoRoot, src)
			}
		}
		if confPath == "" {
			t.Fatalf("%s: command %v does not name a config file mounted from the repository", node, s.Command)
		}
		for k, v := range s.Environment {
			t.Setenv(k, interpolate(v))
		}
		opts, err := server.ProcessConfigFile(confPath)
		if err != nil {
			t.Fatalf("%s: %s: %v", node, confPath, err)
		}
		if !opts.JetStream {
			t.Errorf("%s: JetStream is off", node)
		}
		if opts.ServerName == "" || names[opts.ServerName] {
			t.Errorf("%s: server name %q is empty or not unique", node, opts.ServerName)
		}
		names[opts.ServerName] = true
		if opts.Cluster.Name == "" || opts.Cluster.Port == 0 {
			t.Errorf("%s: cluster %+v has no name or port", node, opts.Cluster)
		}
		var routes []string
		for _, r := range opts.Routes {
			routes = append(routes, r.Hostname())
			if r.Port() != "6222" || opts.Cluster.Port != 6222 {
				t.Errorf("%s: route %s does not match the cluster port %d", node, r, opts.Cluster.Port)
			}
		}
		slices.Sort(routes)
		if !slices.Equal(routes, nodes) {
			t.Errorf("%s: routes to %v, want %v", node, routes, nodes)
		}
		if opts.StoreDir == "" {
			t.Errorf("%s: no JetStream store dir", node)
		}
		checkNATSUsers(t, node, opts)
	}
	// The image tag is the nats-server version Herald is built with.
	want := "nats:" + strings.TrimPrefix(goModVersion(t, filepath.Join(repoRoot, "go.mod"), "github.com/nats-io/nats-server/v2"), "v")
	for _, node := range nodes {
		if img := interpolate(c.Services[node].Image); img != want && !strings.HasPrefix(img, want+"-") {
			t.Errorf("%s: image %s, want %s (go.mod)", node, img, want)
		}
		if !strings.Contains(c.Services[node].Image, "${NATS_IMAGE") {
			t.Errorf("%s: image %s cannot be replaced with NATS_IMAGE", node, c.Services[node].Image)
		}
	}
}

// checkNATSUsers: no anonymous clients; the service user "herald" and the
// publish-only user "producer" (SPEC §9).
func checkNATSUsers(t *testing.T, node string, opts *server.Options) {
	t.Helper()
	if opts.NoAuthUser != "" || opts.Authorization != "" || len(opts.Nkeys) > 0 {
		t.Errorf("%s: no_auth_user %q, token set %v, nkeys %d: want users with passwords only", node, opts.NoAuthUser, opts.Authorization != "", len(opts.Nkeys))
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
		if u.Password == "" {
			t.Errorf("%s: user %s has no password", node, u.Username)
		}
	}
	if len(users) != 2 || users["herald"] == nil || users["producer"] == nil {
		t.Fatalf("%s: users %v, want herald and producer", node, slices.Collect(maps.Keys(users)))
	}
	if p := users["herald"].Permissions; p != nil {
		t.Errorf("%s: the service user is restricted: %+v", node, p)
	}
	p := users["producer"].Permissions
	if p == nil || p.Publish == nil || p.Subscribe == nil {
		t.Fatalf("%s: the producer user has no publish and subscribe permissions", node)
	}
	if want := []string{strings.TrimSuffix(streams.Subjects{}.AllUsers(), "*") + ">"}; !slices.Equal(p.Publish.Allow, want) || len(p.Publish.Deny) > 0 {
		t.Errorf("%s: producer may publish to %v (deny %v), want %v", node, p.Publish.Allow, p.Publish.Deny, want)
	}
	if want := []string{streams.ProducerInbox + ".>"}; !slices.Equal(p.Subscribe.Allow, want) {
		t.Errorf("%s: producer may subscribe to %v, want %v", node, p.Subscribe.Allow, want)
	}
}

// goModVersion is the version of module mod required in the go.mod at path.
func goModVersion(t *testing.T, path, mod string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == mod {
			return f[1]
		}
	}
	t.Fatalf("%s does not require %s", path, mod)
	return ""
}

func TestComposeHeraldServices(t *testing.T) {
	c := loadCompose(t)
	nodes := natsServices(c)
	apply, ok := c.Services["streams-apply"]
	if !ok {
		t.Fatal("no streams-apply service")
	}
	cmd := strings.Join(apply.Command, " ")
	if !strings.Contains(cmd, "streams apply") || !strings.Contains(cmd, "--replicas 3") || !strings.Contains(cmd, "--wait") {
		t.Errorf("streams-apply command %q, want streams apply --replicas 3 --wait …", cmd)
	}
	deps := apply.dependsOn(t)
	for _, n := range nodes {
		if _, ok := deps[n]; !ok {
			t.Errorf("streams-apply does not depend on %s", n)
		}
	}
	roles := map[string]string{"ingest": "ingest", "edge-1": "edge", "edge-2": "edge", "streams-apply": "streams"}
	for name, role := range roles {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("no %s service", name)
			continue
		}
		if len(s.Command) == 0 || s.Command[0] != role {
			t.Errorf("%s: command %v, want %s", name, s.Command, role)
		}
		if role != "streams" {
			if cond := s.dependsOn(t)["streams-apply"]; cond != "service_completed_successfully" {
				t.Errorf("%s: depends on streams-apply with condition %q, want service_completed_successfully", name, cond)
			}
		}
		// The environment is a valid configuration that reaches all
		// three NATS nodes.
		var env []string
		for k, v := range s.Environment {
			env = append(env, k+"="+interpolate(v))
		}
		cfg := config.Default()
		if err := cfg.ApplyEnv(env); err != nil {
			t.Errorf("%s: environment: %v", name, err)
			continue
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: configuration: %v", name, err)
		}
		for _, n := range nodes {
			if !strings.Contains(cfg.NATS.URL, "nats://"+n+":4222") {
				t.Errorf("%s: nats.url %q lacks %s", name, cfg.NATS.URL, n)
			}
		}
		// The stream's settings are streams-apply's (its flags); the other
		// roles do not read them.
		for k := range s.Environment {
			if strings.HasPrefix(k, "HERALD_STREAM_") {
				t.Errorf("%s sets %s, which only streams apply reads", name, k)
			}
		}
		if cfg.NATS.User == "" || !strings.Contains(s.Environment["HERALD_NATS_PASSWORD"], "${NATS_HERALD_PASSWORD") {
			t.Errorf("%s: NATS user %q, password %q: want the service user with the password from the environment", name, cfg.NATS.User, s.Environment["HERALD_NATS_PASSWORD"])
		}
		// Behind nginx every client has nginx's address.
		if role == "edge" && cfg.Edge.IPConnectRate != 0 {
			t.Errorf("%s: edge.ip_connect_rate = %d behind the load balancer, want 0", name, cfg.Edge.IPConnectRate)
		}
		if len(cfg.Ingest.ProducerKeys) == 0 || cfg.Auth.JWTSecret == "" {
			t.Errorf("%s: producer keys or JWT secret missing", name)
		}
		if ev := s.Environment["HERALD_JWT_SECRET"]; !strings.Contains(ev, "${HERALD_JWT_SECRET") {
			t.Errorf("%s: the JWT secret %q is not taken from the environment", name, ev)
		}
	}
}

func TestComposeLoadBalancer(t *testing.T) {
	c := loadCompose(t)
	lb := c.Services["lb"]
	binds, _ := lb.mounts()
	var conf string
	for src, dst := range binds {
		if strings.HasSuffix(dst, "Caddyfile") {
			b, err := os.ReadFile(filepath.Join(repoRoot, src))
			if err != nil {
				t.Fatal(err)
			}
			conf = string(b)
		}
	}
	if conf == "" {
		t.Fatalf("lb mounts no Caddyfile: %v", lb.Volumes)
	}
	// The official image's tag is the Caddy version the compose test builds.
	want := "caddy:" + strings.TrimPrefix(goModVersion(t, filepath.Join(repoRoot, "test", "caddy", "go.mod"), "github.com/caddyserver/caddy/v2"), "v")
	if img := interpolate(lb.Image); img != want || !strings.Contains(lb.Image, "${LB_IMAGE") {
		t.Errorf("lb image %s (%s), want %s replaceable with LB_IMAGE", lb.Image, img, want)
	}
	if len(lb.Ports) != 1 || !strings.HasPrefix(interpolate(lb.Ports[0]), "127.0.0.1:") {
		t.Errorf("lb ports %v, want one on 127.0.0.1 by default", lb.Ports)
	}
	deps := lb.dependsOn(t)
	for _, up := range []string{"edge-1", "edge-2", "ingest"} {
		if _, ok := c.Services[up]; !ok {
			t.Errorf("no service %s", up)
		}
		if !strings.Contains(conf, up+":8080") {
			t.Errorf("the Caddyfile does not name %s:8080", up)
		}
		if _, ok := deps[up]; !ok {
			t.Errorf("lb does not depend on %s", up)
		}
	}
	// Device endpoints go to both edges, streamed; producer routes go to
	// ingest.
	if !strings.Contains(conf, "@edges path_regexp ^/v1/(ws|sse|ack|read|") {
		t.Errorf("the Caddyfile does not match the edges' paths")
	}
	edges := block(t, conf, "handle @edges")
	for _, want := range []string{"reverse_proxy edge-1:8080 edge-2:8080", "flush_interval -1", "lb_try_duration"} {
		if !strings.Contains(edges, want) {
			t.Errorf("handle @edges lacks %q:\n%s", want, edges)
		}
	}
	if !strings.Contains(conf, "@ingest path /v1/users/* /v1/messages\n") || !strings.Contains(block(t, conf, "handle @ingest"), "reverse_proxy ingest:8080") {
		t.Errorf("producer routes do not go to ingest")
	}
	if strings.Contains(block(t, conf, "handle @ingest"), "retry_match") {
		t.Errorf("ingest requests are retried by the proxy; a retry is the producer's, with its Idempotency-Key")
	}
	// Read state, device status and the browser files are the edges'.
	for _, p := range []string{"|ack|", "|read|", `|herald\.js|`, "|users/[^/]+/devices)"} {
		if !strings.Contains(conf, p) {
			t.Errorf("the Caddyfile does not send %s to the edges", p)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"FROM golang:", " AS build", "CGO_ENABLED=0 go build", "./cmd/herald", "COPY --from=build", "USER nonroot"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if froms := strings.Count(df, "\nFROM "); froms < 2 {
		t.Errorf("Dockerfile has %d stages, want a builder and a runtime", froms)
	}
	ig, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "herald-data"} {
		if !slices.Contains(strings.Fields(string(ig)), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

// block returns the text between the brace after head and its match (an
// nginx or Caddyfile block).
func block(t *testing.T, conf, head string) string {
	t.Helper()
	i := strings.Index(conf, head+" {")
	if i < 0 {
		t.Fatalf("nginx config has no %q block", head)
	}
	depth := 0
	for j := i + len(head); j < len(conf); j++ {
		switch conf[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return conf[i : j+1]
			}
		}
	}
	t.Fatalf("unterminated %q block", head)
	return ""
}
