package token_test

import (
	"fmt"
	"time"

	"github.com/herald-push/herald/edge/token"
)

func ExampleMint() {
	// An HS256 secret has at least 32 bytes (openssl rand -hex 32).
	const secret = "example-secret-0123456789abcdef-0123456789"
	raw, err := token.Mint(secret, "alice", "phone-1", time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := token.NewWithPEM(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := v.Verify(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.User, got.Device)
	fmt.Println(got.CheckDevice("phone-1"))
	fmt.Println(got.CheckDevice("tablet"))
	// Output:
	// alice phone-1
	// <nil>
	// token: device does not match the token's dev claim
}
