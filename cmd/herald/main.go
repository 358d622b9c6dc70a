// Command herald runs every role of Herald, a push broker on NATS JetStream:
// serve (everything in one process with an embedded NATS server), ingest and
// edge (one role each against an external NATS), and the tools around them
// (streams, doctor, subject, token, publish, listen, devices, bench,
// version). See README.md.
//
// The command tree is built by newRootCmd from an app value that holds the
// process's outside world (stdout, stderr, environment); there is no
// package-level mutable state, so tests run commands in-process.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run()) }

// run executes the command line and returns the exit code: 0 on success
// (a serve or listen stopped by SIGINT or SIGTERM included), 1 on error.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}
	root := newRootCmd(a)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		return 1
	}
	return 0
}

// app is what the commands need from the process. Tests build their own.
type app struct {
	stdout  io.Writer
	stderr  io.Writer // logs
	environ []string  // as os.Environ returns it; the source of HERALD_*
	// ready, when set, is called by serve, ingest and edge with the bound
	// HTTP address once they accept requests.
	ready func(addr string)
}

// printJSON writes v to stdout as one line of JSON.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cmd: print: %w", err)
	}
	_, err = fmt.Fprintln(a.stdout, string(b))
	return err
}

// newRootCmd builds the whole command tree.
func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "herald",
		Short:         "Herald: push messages to every device of a user, over NATS JetStream",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())
	})
	addConfigFlags(root)
	root.AddCommand(
		newServeCmd(a),
		newIngestCmd(a),
		newEdgeCmd(a),
		newStreamsCmd(a),
		newDoctorCmd(a),
		newSubjectCmd(a),
		newTokenCmd(a),
		newPublishCmd(a),
		newListenCmd(a),
		newDevicesCmd(a),
		newBenchCmd(a),
		newVersionCmd(a),
	)
	return root
}
