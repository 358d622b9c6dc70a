package streams

import (
	"bytes"
	"testing"
)

// FuzzValidateDevice: an accepted device id is 1–128 bytes of the allowed
// characters.
func FuzzValidateDevice(f *testing.F) {
	for _, s := range []string{"laptop", "a:b.c-d_e", "", " ", "a/b", "é", string(bytes.Repeat([]byte("x"), 129))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if ValidateDevice(d) != nil {
			return
		}
		if len(d) < 1 || len(d) > 128 {
			t.Fatalf("accepted %q of %d bytes", d, len(d))
		}
		for _, c := range []byte(d) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-'
			if !ok {
				t.Fatalf("accepted %q with %q", d, c)
			}
		}
	})
}
