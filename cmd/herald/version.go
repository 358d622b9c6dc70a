package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald/cmd/herald/internal/node"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionString is version with the binary's VCS revision (node.Version).
func versionString() string { return node.Version(version) }

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.stdout, "herald", versionString())
			return err
		},
	}
}
