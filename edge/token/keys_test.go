package token

import "testing"

func TestKeyring(t *testing.T) {
	t.Parallel()
	kr, err := NewKeyring([]string{"key-a", "key-b"})
	if err != nil {
		t.Fatal(err)
	}
	if !kr.Match("key-a") || !kr.Match("key-b") || kr.Match("key-c") || kr.Match("") || kr.Len() != 2 {
		t.Error("Match")
	}
	if kr.Index("key-b") != 1 || kr.Index("key-a") != 0 || kr.Index("x") != -1 {
		t.Error("Index")
	}
	if _, err := NewKeyring([]string{"a", ""}); err == nil {
		t.Error("an empty key was accepted")
	}
	if empty, err := NewKeyring(nil); err != nil || empty.Match("") {
		t.Errorf("an empty keyring: %v", err)
	}
}
