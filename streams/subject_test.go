package streams

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		user, token string
	}{
		{"alice", "alice"},
		{"Bob_42-x", "Bob_42-x"},
		{"a.b*c>d", "~YS5iKmM-ZA"},
		{"émile@example.com", "~w6ltaWxlQGV4YW1wbGUuY29t"},
		{"~alice", "~fmFsaWNl"},
		{" ", "~IA"},
	}
	for _, tc := range cases {
		if got := Token(tc.user); got != tc.token {
			t.Errorf("Token(%q) = %q, want %q", tc.user, got, tc.token)
		}
		back, err := UserFromToken(tc.token)
		if err != nil || back != tc.user {
			t.Errorf("UserFromToken(%q) = %q, %v; want %q", tc.token, back, err, tc.user)
		}
	}
}

func TestUserFromTokenRejectsNonCanonical(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"", "~", "~YWxpY2U", "~!!", "a.b", "~YQ=", "~AA"} {
		if _, err := UserFromToken(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("UserFromToken(%q) err = %v, want ErrInvalidToken", tok, err)
		}
	}
}

func TestValidateUser(t *testing.T) {
	t.Parallel()
	ok := []string{"a", "émile@example.com", "a.b*c>d", strings.Repeat("x", 256), "日本"}
	bad := []string{"", strings.Repeat("x", 257), "a\x00b", "tab\there", "\x7f", "\xff\xfe", "a\u0085b"}
	for _, u := range ok {
		if err := ValidateUser(u); err != nil {
			t.Errorf("ValidateUser(%q) = %v", u, err)
		}
	}
	for _, u := range bad {
		if err := ValidateUser(u); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("ValidateUser(%q) = %v, want ErrInvalidUser", u, err)
		}
	}
}

func TestValidateDevice(t *testing.T) {
	t.Parallel()
	ok := []string{"d", "phone-1", "a.b:c_d", strings.Repeat("d", 128)}
	bad := []string{"", strings.Repeat("d", 129), "a b", "a/b", "é", "a*"}
	for _, d := range ok {
		if err := ValidateDevice(d); err != nil {
			t.Errorf("ValidateDevice(%q) = %v", d, err)
		}
	}
	for _, d := range bad {
		if err := ValidateDevice(d); !errors.Is(err, ErrInvalidDevice) {
			t.Errorf("ValidateDevice(%q) = %v, want ErrInvalidDevice", d, err)
		}
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	s := Subjects{Prefix: "acme.push"}
	if got := s.User("a.b"); got != "acme.push.user.~YS5i" {
		t.Errorf("User = %q", got)
	}
	u, err := s.UserFromSubject("acme.push.user.~YS5i")
	if err != nil || u != "a.b" {
		t.Errorf("UserFromSubject = %q, %v", u, err)
	}
	for _, bad := range []string{"herald.user.alice", "acme.push.user.a.b", "acme.push.user."} {
		if _, err := s.UserFromSubject(bad); err == nil {
			t.Errorf("UserFromSubject(%q) succeeded", bad)
		}
	}
	if (Subjects{}).Live("bob") != "herald.live.bob" || (Subjects{}).AllUsers() != "herald.user.*" {
		t.Error("default prefix subjects wrong")
	}
}

func FuzzTokenRoundTrip(f *testing.F) {
	for _, s := range []string{"alice", "a.b*c>d", "émile@example.com", "~x", "", "\x00", "-", "~YQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, user string) {
		tok := Token(user)
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("Token(%q) = %q is not a single subject token", user, tok)
		}
		if ValidateUser(user) != nil {
			return
		}
		back, err := UserFromToken(tok)
		if err != nil || back != user {
			t.Fatalf("round trip %q -> %q -> %q, %v", user, tok, back, err)
		}
		for _, sub := range []Subjects{{}, {Prefix: "acme.push"}} {
			if u, err := sub.UserFromControl(sub.Control(user)); err != nil || u != user {
				t.Fatalf("control subject round trip %q -> %q -> %q, %v", user, sub.Control(user), u, err)
			}
			if _, err := sub.UserFromControl(sub.User(user)); !errors.Is(err, ErrNotUserSubj) {
				t.Fatalf("UserFromControl(%q) = %v, want ErrNotUserSubj", sub.User(user), err)
			}
		}
		// A token is canonical: decoding an arbitrary string and encoding
		// again gives the same string.
		if u2, err := UserFromToken(user); err == nil && Token(u2) != user {
			t.Fatalf("UserFromToken(%q) = %q, whose token is %q", user, u2, Token(u2))
		}
	})
}

func TestDecodeFallback(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := Decode([]byte("plain \xff text"), 7, at)
	if e.Seq != 7 || e.Body != "plain \uFFFD text" || !e.Time.Equal(at) || e.ID != "" {
		t.Errorf("fallback = %+v", e)
	}
	e = Decode([]byte(`{"id":"x","user":"u","time":"2026-11-23T09:00:00Z","title":"t","priority":3}`), 8, at)
	if e.Seq != 8 || e.Title != "t" || e.PriorityOrDefault() != 3 || e.Time.Hour() != 9 {
		t.Errorf("decoded = %+v", e)
	}
	e = Decode([]byte(`{"priority":99,"title":"t"}`), 9, at)
	if e.Body != `{"priority":99,"title":"t"}` {
		t.Errorf("invalid envelope should be delivered as text, got %+v", e)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"title":"t","data":{"a":1}}`))
	f.Add([]byte(`{"data":[1]}`))
	f.Add([]byte("\xff"))
	f.Add([]byte(`{"priority":-1,"body":"x"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		e := Decode(payload, 1, time.Unix(0, 0))
		if e.Seq != 1 {
			t.Fatal("seq lost")
		}
		if _, err := e.Encode(); err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
	})
}
