package test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/herald-push/herald/config"
	"github.com/herald-push/herald/streams/streamstest"
)

// The browser tests run the JavaScript client (edge/web/herald.js) and the
// console in a headless Chromium against a Herald on loopback (see
// browser_harness_test.go). Each starts its browser first, so that it is
// skipped before anything starts when there is no Chromium, and waits on
// page state with a deadline; a last message (the fence) marks the end of
// what was published, so that order and counts are checked on everything
// before it.

// numbered returns prefix0, prefix1, …
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// TestBrowserReceivesInOrder: a page loads the client from /v1/herald.js
// and receives messages published over HTTP, in order, each once; what it
// processed is acked to the edge and kept in localStorage.
func TestBrowserReceivesInOrder(t *testing.T) {
	tab := newBrowser(t)
	h := startServe(t, nil)
	navigate(t, tab, pageURL(h.url(), "laptop", mint(t, "alice", "laptop")))
	waitJS(t, tab, 20*time.Second, `T.states.some((s) => s.state === "synced" && s.transport === "ws")`, pageState)
	if n := h.requestCount("GET /v1/herald.js"); n != 1 {
		t.Errorf("GET /v1/herald.js served %d times, want 1", n)
	}

	bodies := append(numbered("m", 20), "fence")
	seqs := h.publishBodies(t, "alice", bodies...)
	waitBody(t, tab, "fence")
	checkMessages(t, pageMessages(t, tab), bodies, seqs)

	last := seqs[len(seqs)-1]
	h.waitPosition(t, "alice", "laptop", last)
	if pos := evalJS[uint64](t, tab, `client.position`); pos != last {
		t.Errorf("client.position = %d, want %d", pos, last)
	}
	stored := evalJS[string](t, tab, `String(Object.entries(localStorage).find(([k]) => k.endsWith(":alice:laptop:seq"))?.[1])`)
	if stored != strconv.FormatUint(last, 10) {
		t.Errorf("position in localStorage = %q, want %d", stored, last)
	}
}

// TestBrowserResumesAfterRestart: Herald stops (closing the socket with
// 1001) and starts again on the same data dir while messages are being
// delivered; the page reconnects by itself and ends with every message
// once, in order.
func TestBrowserResumesAfterRestart(t *testing.T) {
	tab := newBrowser(t)
	h := startServe(t, nil)
	navigate(t, tab, pageURL(h.url(), "laptop", mint(t, "alice", "laptop")))
	waitJS(t, tab, 20*time.Second, `T.states.some((s) => s.state === "synced")`, pageState)

	before := numbered("before", 15)
	seqs := h.publishBodies(t, "alice", before...)
	waitBody(t, tab, "before0") // the stream has started; the rest may be on the way
	h.restart(t)
	after := append(numbered("after", 15), "fence")
	seqs = append(seqs, h.publishBodies(t, "alice", after...)...)
	waitBody(t, tab, "fence")
	checkMessages(t, pageMessages(t, tab), append(before, after...), seqs)

	if !evalJS[bool](t, tab, `T.states.some((s) => s.state === "closed" && s.code === 1001)`) {
		t.Errorf("the page saw no close with 1001: %s", evalJS[string](t, tab, pageState))
	}
	if n := evalJS[int](t, tab, `T.welcomes.length`); n < 2 {
		t.Errorf("%d welcomes, want a second one after the restart", n)
	}
	h.waitPosition(t, "alice", "laptop", seqs[len(seqs)-1])
}

// TestBrowserRenewsExpiringToken: the page's token function fetches a
// token valid 3 s; the client fetches a new one before exp, and when the
// edge closes the expired session with 4001 it connects again with the new
// token, without losing or repeating a message.
func TestBrowserRenewsExpiringToken(t *testing.T) {
	tab := newBrowser(t)
	h := startServe(t, nil)
	tokenURL := "/test/token?user=alice&device=laptop&ttl=3"
	navigate(t, tab, h.url()+"/test/page#device=laptop&tokenurl="+url.QueryEscape(tokenURL))
	waitJS(t, tab, 20*time.Second, `T.states.some((s) => s.state === "synced")`, pageState)

	before := numbered("before", 5)
	seqs := h.publishBodies(t, "alice", before...)
	waitBody(t, tab, "before4")
	waitJS(t, tab, 20*time.Second, `T.states.some((s) => s.state === "closed" && s.code === 4001)`, pageState)
	after := append(numbered("after", 5), "fence")
	seqs = append(seqs, h.publishBodies(t, "alice", after...)...)
	waitBody(t, tab, "fence")
	checkMessages(t, pageMessages(t, tab), append(before, after...), seqs)
	if n := h.requestCount("GET /test/token"); n < 2 {
		t.Errorf("the token function was called %d times, want a second call for the new token", n)
	}
	if n := evalJS[int](t, tab, `T.welcomes.length`); n < 2 {
		t.Errorf("%d welcomes, want a second one after the 4001", n)
	}
}

// TestBrowserReportsGap: a page opened again resumes from the position it
// stored in localStorage; retention removed messages after it meanwhile,
// so the welcome reports a gap, and the page receives what is retained, in
// order.
func TestBrowserReportsGap(t *testing.T) {
	tab := newBrowser(t)
	h := startServe(t, func(c *config.Config) { c.Stream.MaxMsgsPerUser = 5 })
	page := pageURL(h.url(), "laptop", mint(t, "alice", "laptop"))
	navigate(t, tab, page)
	waitJS(t, tab, 20*time.Second, `T.states.some((s) => s.state === "synced")`, pageState)
	first := numbered("m", 3)
	h.publishBodies(t, "alice", first...)
	waitBody(t, tab, "m2")
	waitJS(t, tab, 5*time.Second, `client.position === T.msgs.at(-1).seq`, pageState)
	navigate(t, tab, "about:blank")

	later := numbered("n", 10)
	seqs := h.publishBodies(t, "alice", later...) // the stream keeps the last 5 of alice's
	navigate(t, tab, page)
	waitBody(t, tab, "n9")
	checkMessages(t, pageMessages(t, tab), later[5:], seqs[5:])
	if !evalJS[bool](t, tab, `T.welcomes.length === 1 && T.welcomes[0].gap === true && T.states.some((s) => s.state === "open" && s.gap)`) {
		t.Errorf("no gap reported: %s", evalJS[string](t, tab, `JSON.stringify({welcomes: T.welcomes, states: T.states})`))
	}
}

// TestBrowserTabsShareOneConnection: two tabs of one browser open the same
// device; one holds the only socket on the server and both show every
// message once, in order. When that tab closes, the other takes over on a
// socket of its own.
func TestBrowserTabsShareOneConnection(t *testing.T) {
	browser := newBrowser(t)
	h := startServe(t, nil)
	page := pageURL(h.url(), "laptop", mint(t, "alice", "laptop"))
	tab1, closeTab1 := newTab(t, browser)
	navigate(t, tab1, page)
	waitJS(t, tab1, 20*time.Second, `client.leader && T.states.some((s) => s.state === "synced")`, pageState)
	tab2, _ := newTab(t, browser)
	navigate(t, tab2, page)
	// The second tab learns the first one's state over the channel.
	waitJS(t, tab2, 20*time.Second, `!client.leader && T.states.some((s) => s.state === "synced")`, pageState)
	oneSocket := func(wsRequests int) {
		t.Helper()
		if n := h.connections(t, "ws"); n != 1 {
			t.Errorf("herald_edge_connections{transport=ws} = %d, want 1", n)
		}
		if n := h.requestCount("GET /v1/ws"); n != wsRequests {
			t.Errorf("%d WebSocket requests, want %d", n, wsRequests)
		}
	}
	oneSocket(1)

	bodies := append(numbered("m", 10), "fence")
	seqs := h.publishBodies(t, "alice", bodies...)
	waitBody(t, tab1, "fence")
	waitBody(t, tab2, "fence")
	checkMessages(t, pageMessages(t, tab1), bodies, seqs)
	checkMessages(t, pageMessages(t, tab2), bodies, seqs)
	oneSocket(1)

	closeTab1()
	waitJS(t, tab2, 20*time.Second, `client.leader && T.states.at(-1).state === "synced"`, pageState)
	// The first tab's socket closes as the second one's opens.
	streamstest.WaitFor(t, 10*time.Second, func() error {
		if n := h.connections(t, "ws"); n != 1 {
			return fmt.Errorf("%d WebSocket connections", n)
		}
		return nil
	})
	more := append(numbered("n", 5), "fence2")
	seqs = append(seqs, h.publishBodies(t, "alice", more...)...)
	waitBody(t, tab2, "fence2")
	checkMessages(t, pageMessages(t, tab2), append(bodies, more...), seqs)
	oneSocket(2)
}

// TestBrowserFallsBackToSSE: behind a proxy that refuses WebSocket
// upgrades, the client streams over SSE, receives every message once, in
// order, and acks them with POST /v1/ack.
func TestBrowserFallsBackToSSE(t *testing.T) {
	tab := newBrowser(t)
	h := startServe(t, nil)
	target, err := url.Parse(h.url())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu         sync.Mutex
		refused    int
		ackAnswers []int
	)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // as a proxy in front of Herald does; the edge checks Origin against it
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method == http.MethodPost && resp.Request.URL.Path == "/v1/ack" {
				mu.Lock()
				ackAnswers = append(ackAnswers, resp.StatusCode)
				mu.Unlock()
			}
			return nil
		},
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			mu.Lock()
			refused++
			mu.Unlock()
			http.Error(w, "this proxy does not pass WebSocket upgrades", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		// The browser, closed later, still holds its event stream open.
		proxy.CloseClientConnections()
		proxy.Close()
	})

	navigate(t, tab, pageURL(proxy.URL, "tablet", mint(t, "alice", "tablet")))
	waitJS(t, tab, 20*time.Second, `T.states.some((s) => s.state === "synced" && s.transport === "sse")`, pageState)
	if n := h.connections(t, "sse"); n != 1 {
		t.Errorf("herald_edge_connections{transport=sse} = %d, want 1", n)
	}
	if n := h.connections(t, "ws"); n != 0 {
		t.Errorf("herald_edge_connections{transport=ws} = %d, want 0", n)
	}

	bodies := append(numbered("m", 10), "fence")
	seqs := h.publishBodies(t, "alice", bodies...)
	waitBody(t, tab, "fence")
	checkMessages(t, pageMessages(t, tab), bodies, seqs)
	h.waitPosition(t, "alice", "tablet", seqs[len(seqs)-1])

	// read() over SSE is a POST /v1/read; another device's read arrives as
	// a read event.
	evalJS[any](t, tab, `client.read(`+strconv.FormatUint(seqs[3], 10)+`), null`)
	h.waitRead(t, "alice", seqs[3])
	status, body := call(t, http.MethodPost, h.url(), "/v1/read", mint(t, "alice", "phone"), `{"seq":`+strconv.FormatUint(seqs[5], 10)+`}`)
	if status != http.StatusOK {
		t.Fatalf("POST /v1/read: %d %s", status, body)
	}
	waitJS(t, tab, 10*time.Second, `T.frames.some((f) => f.type === "read" && f.seq === `+strconv.FormatUint(seqs[5], 10)+` && f.device === "phone")`, `JSON.stringify(T.frames)`)

	mu.Lock()
	defer mu.Unlock()
	if refused == 0 {
		t.Error("the client never tried a WebSocket")
	}
	if len(ackAnswers) == 0 {
		t.Error("no POST /v1/ack went through the proxy")
	}
	for _, code := range ackAnswers {
		if code != http.StatusNoContent {
			t.Errorf("POST /v1/ack answered %d, want 204 (all: %v)", code, ackAnswers)
			break
		}
	}
}

// TestBrowserConsole: the console at / connects with a pasted token,
// publishes from its form with a producer key, shows the message with its
// fields, and acks it; the page logs no error (a Content-Security-Policy
// violation would be one), and fits a phone's width. With
// HERALD_SCREENSHOT=1 it saves its screenshot as docs/console.png.
func TestBrowserConsole(t *testing.T) {
	tab := newBrowser(t)
	h := startServe(t, nil)
	var (
		mu         sync.Mutex
		pageErrors []string
	)
	if err := chromedp.Listen(tab, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				msg = "console.error"
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				msg = string(ev.Entry.Source) + ": " + ev.Entry.Text
			}
		}
		if msg != "" {
			mu.Lock()
			pageErrors = append(pageErrors, msg)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, steps...); err != nil {
			t.Fatal(err)
		}
	}
	// set fills a form field. chromedp's SetValue passes an empty string
	// as undefined (the field would read "undefined"), so an empty value
	// is set by a script.
	set := func(sel, value string) chromedp.Action[chromedp.Void] {
		if value == "" {
			return chromedp.Evaluate[chromedp.Void](`document.querySelector(` + strconv.Quote(sel) + `).value = ""`)
		}
		return chromedp.SetValue(chromedp.CSS(sel), value)
	}
	const consoleState = `JSON.stringify({state: document.getElementById("state").textContent, result: document.getElementById("publish-result").textContent, items: document.querySelectorAll("#messages li").length})`

	do(chromedp.EmulateViewport(1280, 860), chromedp.Navigate(h.url()+"/"))
	do(
		set(`#connect [name=token]`, mint(t, "alice", "")),
		set(`#connect [name=device]`, "console"),
		chromedp.Click(chromedp.CSS(`#connect button[type=submit]`)),
	)
	waitJS(t, tab, 20*time.Second, `document.getElementById("state").dataset.state === "synced" && document.getElementById("s-transport").textContent === "ws"`, consoleState)

	type published struct {
		title, body, priority, tags, data string
	}
	msgs := []published{
		{"Nightly build", "main is green again", "3", "ci", ``},
		{"Disk almost full", "db-2: 91% of /var used", "8", "ops, disk", `{"host": "db-2", "used": 0.91}`},
		{"Deploy finished", "api v2.3.1 is live", "5", "deploy, api", `{"version": "2.3.1", "build": 1234}`},
	}
	var seqs []uint64
	for i, m := range msgs {
		do(
			set(`#publish [name=key]`, testProducerKey),
			set(`#publish [name=title]`, m.title),
			set(`#publish [name=body]`, m.body),
			set(`#publish [name=priority]`, m.priority),
			set(`#publish [name=tags]`, m.tags),
			set(`#publish [name=data]`, m.data),
			chromedp.Click(chromedp.CSS(`#publish button[type=submit]`)),
		)
		// The answer of this publish, then its message in the list.
		waitJS(t, tab, 10*time.Second, `document.getElementById("publish-result").textContent.includes("as seq") && document.querySelectorAll("#messages li").length === `+strconv.Itoa(i+1), consoleState)
		seq, err := strconv.ParseUint(evalJS[string](t, tab, `document.getElementById("publish-result").dataset.seq`), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}

	type shown struct {
		Seq   string   `json:"seq"`
		Title string   `json:"title"`
		Body  string   `json:"body"`
		Prio  string   `json:"prio"`
		Tags  []string `json:"tags"`
		Data  string   `json:"data"`
	}
	items := evalJS[[]shown](t, tab, `[...document.querySelectorAll("#messages li")].map((li) => ({
		seq: li.dataset.seq,
		title: li.querySelector(".title")?.textContent ?? "",
		body: li.querySelector(".body")?.textContent ?? "",
		prio: li.querySelector(".prio").textContent,
		tags: [...li.querySelectorAll(".tag")].map((e) => e.textContent),
		data: li.querySelector(".data") ? JSON.stringify(JSON.parse(li.querySelector(".data").textContent)) : "",
	}))`)
	if len(items) != len(msgs) {
		t.Fatalf("the list shows %d messages, want %d: %+v", len(items), len(msgs), items)
	}
	for i, m := range msgs {
		got := items[len(items)-1-i] // newest first
		wantData := ""
		if m.data != "" {
			wantData = strings.NewReplacer(" ", "").Replace(m.data)
		}
		if got.Seq != strconv.FormatUint(seqs[i], 10) || got.Title != m.title || got.Body != m.body || got.Prio != "P"+m.priority ||
			strings.Join(got.Tags, ", ") != m.tags || got.Data != wantData {
			t.Errorf("message %d shown as %+v, want seq %d and %+v", i, got, seqs[i], m)
		}
	}

	// Ack the second message: it and the first are acked, the third is not.
	do(chromedp.Click(chromedp.CSS(`#messages li[data-seq="` + strconv.FormatUint(seqs[1], 10) + `"] button.ack`)))
	acked := evalJS[[]bool](t, tab, `[...document.querySelectorAll("#messages li")].reverse().map((li) => li.classList.contains("acked"))`)
	if len(acked) != 3 || !acked[0] || !acked[1] || acked[2] {
		t.Errorf("acked flags (oldest first) = %v, want [true true false]", acked)
	}
	h.waitPosition(t, "alice", "console", seqs[1])

	// Mark the first message read: the user's read position moves, and the
	// console shows it.
	do(chromedp.Click(chromedp.CSS(`#messages li[data-seq="` + strconv.FormatUint(seqs[0], 10) + `"] button.read`)))
	h.waitRead(t, "alice", seqs[0])
	waitJS(t, tab, 5*time.Second, `document.getElementById("s-read").textContent.startsWith("`+strconv.FormatUint(seqs[0], 10)+` ")`, `document.getElementById("s-read").textContent`)

	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, shot)

	// At a phone's width nothing is wider than the screen.
	do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	waitJS(t, tab, 5*time.Second, `innerWidth === 390`, `String(innerWidth)`)
	if w := evalJS[int](t, tab, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390 px wide the page is %d px wide", w)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("the console logged errors:\n%s", strings.Join(pageErrors, "\n"))
	}
}

// saveScreenshot writes the console's screenshot into the test's temp dir,
// and over docs/console.png (which the README shows) when
// HERALD_SCREENSHOT=1.
func saveScreenshot(t *testing.T, png []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(t.TempDir(), "console.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("HERALD_SCREENSHOT") != "1" {
		return
	}
	path := filepath.Join("..", "docs", "console.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
