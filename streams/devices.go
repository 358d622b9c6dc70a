package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DevicesBucketName is the KV bucket that holds each device's acked
// position for the live delivery engine (SPEC §1). With a cap on devices
// per user, the consumer engine keeps an entry per device there too.
const DevicesBucketName = "HERALD_DEVICES"

// DevicesStreamName is the JetStream stream that backs the devices bucket,
// named by the KV convention "KV_<bucket>".
const DevicesStreamName = "KV_" + DevicesBucketName

// DevicesBucket returns the configuration of the device-position bucket: one
// value per device (history 1), deleted when it has not been written for
// ttl (the device TTL), file storage, as many replicas as the stream. The
// bucket also holds each user's read position (ReadKey).
func DevicesBucket(c Config, ttl time.Duration) jetstream.KeyValueConfig {
	replicas := c.Replicas
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.KeyValueConfig{
		Bucket:      DevicesBucketName,
		Description: "Herald: acked position of each device, read position of each user",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// ApplyDevices creates the device-position bucket or updates it to cfg;
// running it again with the same configuration changes nothing.
func ApplyDevices(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("streams: apply bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// DeviceKey is the key of a device's position in the devices bucket:
// <user token>.<device>, each part escaped to the characters a KV key
// allows. Bytes outside [A-Za-z0-9_-] — the "~" of an encoded user token,
// and ":" or "." in a device id — become "=" and two upper-case hex digits
// ("~" → "=7E", ":" → "=3A", "." → "=2E"). "=" appears in neither a token
// nor a device id, so the mapping is reversible and collision-free, and the
// single "." keeps the user part one subject token: the keys of a user match
// <escaped token>.*. For the common plain ids the key is exactly
// <user>.<device>.
func DeviceKey(user, device string) string {
	return escapeKey(Token(user)) + "." + escapeKey(device)
}

// DeviceKeyFilter is the KV key filter that matches every device key of
// user and no other user's: <escaped token>.*. The edge counts a user's
// devices with it (edge.max_devices_per_user).
func DeviceKeyFilter(user string) string {
	return escapeKey(Token(user)) + ".*"
}

// ReadKey is the key of a user's read position (SPEC §10) in the devices
// bucket: the escaped user token alone, one token, so that it matches no
// DeviceKeyFilter and no device key.
func ReadKey(user string) string {
	return escapeKey(Token(user))
}

// ErrInvalidKey: a key that DeviceKey did not produce.
var ErrInvalidKey = errors.New("not a device key")

// ParseDeviceKey is the inverse of DeviceKey.
func ParseDeviceKey(key string) (user, device string, err error) {
	tok, dev, ok := strings.Cut(key, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	tok, err = unescapeKey(tok)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	if device, err = unescapeKey(dev); err != nil || ValidateDevice(device) != nil {
		return "", "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	if user, err = UserFromToken(tok); err != nil {
		return "", "", fmt.Errorf("%w: %q: %w", ErrInvalidKey, key, err)
	}
	if DeviceKey(user, device) != key {
		return "", "", fmt.Errorf("%w: %q is not canonical", ErrInvalidKey, key)
	}
	return user, device, nil
}

// unescapeKey inverts escapeKey.
func unescapeKey(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated escape")
		}
		c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", errors.New("bad escape")
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), nil
}

func escapeKey(s string) string {
	if plain(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPlain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
