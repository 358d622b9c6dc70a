package edge

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-push/herald"
)

// maxTrackedIPs bounds the per-IP connect-rate table; beyond it the least
// recently seen address is forgotten (its bucket starts full again).
const maxTrackedIPs = 65536

// limits are the checks a connection request passes before anything else
// (token verification included): the per-IP connect rate, the browser
// origin and the edge's connection limit. Safe for concurrent use.
type limits struct {
	ips      *ipLimiter // nil: no per-IP limit
	origin   func(r *http.Request) bool
	maxConns int64 // 0: unlimited
	active   atomic.Int64
}

func newLimits(e Config, checkOrigin func(r *http.Request) bool) *limits {
	l := &limits{maxConns: int64(e.MaxConns), origin: checkOrigin}
	if e.IPConnectRate > 0 {
		l.ips = newIPLimiter(rate.Limit(e.IPConnectRate), e.IPConnectBurst, maxTrackedIPs)
	}
	if l.origin == nil {
		l.origin = newOriginPolicy(e.AllowedOrigins).allowed
	}
	return l
}

// Gate admits a connection request (WebSocket or another transport of this
// edge) before its token is verified: a client IP over edge.ip_connect_rate
// is 429 rate_limited with Retry-After, a browser Origin that is neither
// the edge's own host nor in edge.allowed_origins is 403 forbidden, and an
// edge at edge.max_conns is 503 unavailable with Retry-After. On success the
// caller holds one connection slot and must call release exactly once when
// the connection ends (or is refused later). The error is an *herald.Error.
func (s *Server) Gate(r *http.Request) (release func(), err error) {
	l := s.lim
	if l.ips != nil {
		if ok, wait := l.ips.allow(clientIP(r), time.Now()); !ok {
			return nil, &herald.Error{Code: herald.RateLimited, Message: "too many connection attempts from this address; retry later", RetryAfter: max(wait, time.Second)}
		}
	}
	if !l.origin(r) {
		return nil, herald.NewError(herald.Forbidden, "origin %q is not allowed (edge.allowed_origins)", r.Header.Get("Origin"))
	}
	if !l.reserve() {
		return nil, &herald.Error{Code: herald.Unavailable, Message: "this edge is at its connection limit; retry later or elsewhere", RetryAfter: time.Second}
	}
	var once sync.Once
	return func() { once.Do(func() { l.active.Add(-1) }) }, nil
}

// reserve takes a connection slot unless the edge is full.
func (l *limits) reserve() bool {
	for {
		n := l.active.Load()
		if l.maxConns > 0 && n >= l.maxConns {
			return false
		}
		if l.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// clientIP is the key of the per-IP limit: the peer address (no forwarding
// header is trusted), an IPv6 address reduced to its /64.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ipLimiter is a token bucket per client address, in a table of at most max
// addresses evicted least recently seen first. Its lock is never held
// across I/O.
type ipLimiter struct {
	limit rate.Limit
	burst int
	max   int

	mu  sync.Mutex
	m   map[string]*list.Element // of *ipEntry
	lru *list.List               // front: most recently seen
}

type ipEntry struct {
	ip  string
	lim *rate.Limiter
}

func newIPLimiter(limit rate.Limit, burst, max int) *ipLimiter {
	return &ipLimiter{limit: limit, burst: burst, max: max, m: map[string]*list.Element{}, lru: list.New()}
}

// allow takes a token for ip; when there is none it reports how long until
// there will be.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lim *rate.Limiter
	if el, ok := l.m[ip]; ok {
		l.lru.MoveToFront(el)
		lim = el.Value.(*ipEntry).lim
	} else {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[ip] = l.lru.PushFront(&ipEntry{ip: ip, lim: lim})
		for l.lru.Len() > l.max {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(*ipEntry).ip)
		}
	}
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// size is the number of tracked addresses.
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// originPolicy decides browser upgrades: a request without an Origin header
// (not a browser) passes, as does one from the edge's own origin or from a
// listed origin; "*" allows every origin. An origin is scheme and host:
// the edge's own is the request's Host with https when the request came
// over TLS to this process, else http (no forwarding header is trusted, so
// behind a proxy that terminates TLS the https origin must be listed).
type originPolicy struct {
	any     bool
	origins map[string]struct{} // "scheme://host[:port]", lower case
}

func newOriginPolicy(list []string) originPolicy {
	p := originPolicy{origins: map[string]struct{}{}}
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		p.origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = struct{}{}
	}
	return p
}

func (p originPolicy) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) && strings.EqualFold(u.Scheme, requestScheme(r)) {
		return true
	}
	_, ok := p.origins[strings.ToLower(u.Scheme+"://"+u.Host)]
	return ok
}

// requestScheme is the scheme the request reached this process with.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
