package config

import "strings"

// ServerURL is the URL list in the form nats.Connect takes it: the
// configured URLs joined by commas, spaces removed.
func (n *NATS) ServerURL() string {
	return strings.Join(n.URLs(), ",")
}
