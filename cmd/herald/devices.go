package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/config"
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
			st, raw, err := fetchDevices(cmd.Context(), &cfg, baseURL, user, cred)
			if err != nil {
				return err
			}
			if asJSON {
				_, err := fmt.Fprintln(a.stdout, string(bytes.TrimSpace(raw)))
				return err
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

func fetchDevices(ctx context.Context, cfg *config.Config, baseURL, user, cred string) (herald.Devices, []byte, error) {
	var st herald.Devices
	u := strings.TrimRight(baseURL, "/") + "/v1/users/" + url.PathEscape(user) + "/devices"
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.NATS.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return st, nil, fmt.Errorf("cmd: devices: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, nil, fmt.Errorf("cmd: devices: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return st, nil, fmt.Errorf("cmd: devices: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb herald.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			return st, nil, fmt.Errorf("cmd: devices: %s: %s: %s", resp.Status, eb.Error.Code, eb.Error.Message)
		}
		return st, nil, fmt.Errorf("cmd: devices: %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("cmd: devices: answer: %w", err)
	}
	return st, raw, nil
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
