package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/ingest/client"
	"github.com/herald-push/herald/streams"
)

func newDevicesCmd(a *app) *cobra.Command {
	var (
		user, baseURL, key, tok string
		asJSON                  bool
	)
	cmd := &cobra.Command{
		Use:   "devices --user U",
		Short: "Show a user's devices: acked position, last seen, connected; and the read position",
		Long: `Ask an edge (GET /v1/users/{user}/devices) about a user's devices: for each
one the seq it acked up to, when it was last seen and whether it is connected
to any edge now, and the user's read position and last seq. A backend uses it
to tell whether a message reached a device.

It authenticates with the producer key --key (else the first of
ingest.producer_keys / HERALD_PRODUCER_KEYS, else the key herald serve
generated in <data-dir>/credentials.json), or with the user's client token
--token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := streams.ValidateUser(user); err != nil {
				return fmt.Errorf("cmd: devices: %w", err)
			}
			cred := tok
			if cred == "" {
				if cred = key; cred == "" {
					if cred, err = creds.ProducerKey(&cfg); err != nil {
						return err
					}
				}
			}
			c, err := client.New(client.Options{URL: baseURL, Credential: cred})
			if err != nil {
				return fmt.Errorf("cmd: devices: %w", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*cfg.NATS.Timeout)
			defer cancel()
			st, err := c.Devices(ctx, user)
			if err != nil {
				return fmt.Errorf("cmd: %w", err)
			}
			if asJSON {
				return a.printJSON(st)
			}
			return printDevices(a.stdout, st, time.Now())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&user, "user", "", "user id")
	fl.StringVar(&baseURL, "url", "http://127.0.0.1:8080", "base URL of an edge")
	fl.StringVar(&key, "key", "", "producer key")
	fl.StringVar(&tok, "token", "", "the user's client token, instead of a producer key")
	fl.BoolVar(&asJSON, "json", false, "print the answer as JSON")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

// printDevices writes the status as a table, last seen relative to now.
func printDevices(w io.Writer, st herald.Devices, now time.Time) error {
	fmt.Fprintf(w, "read %d of %d\n", st.Read, st.LastSeq)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tACKED\tBEHIND\tLAST SEEN\tCONNECTED")
	for _, d := range st.Devices {
		seen := "-"
		if d.LastSeen != nil {
			seen = now.Sub(*d.LastSeen).Round(time.Second).String() + " ago"
			if d.Connected {
				seen = "now"
			}
		}
		behind := uint64(0)
		if st.LastSeq > d.Acked {
			behind = st.LastSeq - d.Acked
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%v\n", d.Device, d.Acked, behind, seen, d.Connected)
	}
	return tw.Flush()
}
