package token_test

import (
	"fmt"
	"time"

	"github.com/herald-push/herald/edge/token"
)

func ExampleMint() {
	raw, err := token.Mint("s3cret", "alice", "phone-1", time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := token.NewWithPEM("s3cret")
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
