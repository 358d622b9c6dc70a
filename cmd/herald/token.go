package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald/cmd/herald/internal/creds"
	"github.com/herald-push/herald/edge/token"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token --user U [--device D] [--ttl 24h]",
		Short: "Mint a client JWT (HS256) with auth.jwt_secret",
		Long: `Mint a client token signed with auth.jwt_secret (HERALD_JWT_SECRET). Without a
configured secret, the one herald serve generated in <data-dir>/credentials.json
is used. With --device the token only opens that device.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig(cmd)
			if err != nil {
				return err
			}
			user, _ := cmd.Flags().GetString("user")
			device, _ := cmd.Flags().GetString("device")
			ttl, _ := cmd.Flags().GetDuration("ttl")
			if ttl <= 0 {
				return fmt.Errorf("cmd: token: --ttl %v must be positive", ttl)
			}
			// The edge refuses a longer token; do not mint one.
			if max := cfg.Auth.MaxTokenTTL; max > 0 && ttl > max {
				return fmt.Errorf("cmd: token: --ttl %v exceeds auth.max_token_ttl %v", ttl, max)
			}
			secret, err := creds.JWTSecret(&cfg)
			if err != nil {
				return err
			}
			tok, err := token.Mint(secret, user, device, ttl)
			if err != nil {
				return fmt.Errorf("cmd: token: %w", err)
			}
			_, err = fmt.Fprintln(a.stdout, tok)
			return err
		},
	}
	cmd.Flags().String("user", "", "user id (the sub claim)")
	cmd.Flags().String("device", "", "bind the token to this device id (the dev claim)")
	cmd.Flags().Duration("ttl", 24*time.Hour, "lifetime of the token")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}
