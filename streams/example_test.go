package streams_test

import (
	"fmt"

	"github.com/herald-push/herald/streams"
)

func ExampleToken() {
	fmt.Println(streams.Token("alice"))
	fmt.Println(streams.Token("émile@example.com"))
	// Output:
	// alice
	// ~w6ltaWxlQGV4YW1wbGUuY29t
}

func ExampleUserFromToken() {
	user, err := streams.UserFromToken("~YS5iKmM-ZA")
	fmt.Println(user, err)
	// Output: a.b*c>d <nil>
}

func ExampleSubjects_User() {
	fmt.Println(streams.Subjects{}.User("alice"))
	fmt.Println(streams.Subjects{Prefix: "acme"}.User("a.b"))
	// Output:
	// herald.user.alice
	// acme.user.~YS5i
}

func ExampleValidateDevice() {
	fmt.Println(streams.ValidateDevice("phone-1"))
	fmt.Println(streams.ValidateDevice("my phone"))
	// Output:
	// <nil>
	// invalid device id: device id may only contain A-Z a-z 0-9 _ . : -
}

func ExampleLogUser() {
	fmt.Println(streams.LogUser("alice"))
	// Output: u:2bd806c97f0e
}
