package ingest

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"testing"

	"github.com/herald-push/herald"
)

func TestDecodeForm(t *testing.T) {
	t.Parallel()
	p := func(n int) *int { return &n }
	for _, tc := range []struct {
		body string
		want input
		code herald.Code
	}{
		{body: "done", want: input{Body: "done"}},
		{body: "disk at 90%", want: input{Body: "disk at 90%"}},
		{body: "a=b&c=d", want: input{Body: "a=b&c=d"}},
		{body: "1+1=2", want: input{Body: "1+1=2"}},
		{body: "", want: input{}},
		{body: "body=main+is+red&title=CI&priority=8&tags=ci,red", want: input{Title: "CI", Body: "main is red", Priority: p(8), Tags: []string{"ci", "red"}}},
		{body: "message=hi&tags=a&tags=b", want: input{Body: "hi", Tags: []string{"a", "b"}}},
		{body: "title=only", want: input{Title: "only"}},
		{body: "id=order-1&body=x&unknown=1", want: input{ID: "order-1", Body: "x"}},
		{body: "body=x&priority=high", code: herald.InvalidMessage},
		{body: "body=x&body=y", code: herald.InvalidMessage},
		{body: "body=x&message=y", code: herald.InvalidMessage},
		{body: "body=\xff", code: herald.InvalidMessage},
	} {
		got, err := decodeForm([]byte(tc.body))
		if tc.code != "" {
			var e *herald.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Errorf("%q: %+v, %v; want %s", tc.body, got, err, tc.code)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
}

// FuzzDecodeForm: a body is either refused with a 400 or read; a body that
// is not a form with a known field is the text itself.
func FuzzDecodeForm(f *testing.F) {
	for _, s := range []string{"done", "body=x&title=y", "priority=5", "tags=a,,b", "%zz", "body=x&body=y", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := decodeForm([]byte(s))
		if err != nil {
			var e *herald.Error
			if !errors.As(err, &e) || e.Code.Status() != 400 {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		q, perr := url.ParseQuery(s)
		if form := perr == nil && slices.ContainsFunc(formFields, q.Has); !form && !reflect.DeepEqual(in, input{Body: s}) {
			t.Fatalf("%q is not a form but was read as %+v", s, in)
		}
	})
}
