// Command caddy is Caddy with the modules docs/compose/Caddyfile uses, built
// from its Go module by test/compose_run_test.go for the load balancer image
// of the compose test (no image can be pulled there). It is a module of its
// own so that Herald's go.mod does not carry Caddy's dependencies.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/requestbody"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func main() { caddycmd.Main() }
