package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// envAliases are the short names SPEC §8 promises, next to the generic
// HERALD_<SECTION>_<FIELD> names derived from the YAML paths.
var envAliases = map[string]string{
	"HERALD_NATS_URL":      "nats.url",
	"HERALD_JWT_SECRET":    "auth.jwt_secret",
	"HERALD_PRODUCER_KEYS": "ingest.producer_keys",
	"HERALD_DELIVERY":      "edge.delivery",
}

// LoadYAML overlays the YAML document in r onto c. Unknown keys are errors.
func (c *Config) LoadYAML(r io.Reader) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: yaml: %w", err)
	}
	return nil
}

// LoadFile overlays the YAML file at path onto c.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.LoadYAML(bytes.NewReader(b)); err != nil {
		return fmt.Errorf("%w (file %s)", err, path)
	}
	return nil
}

// ApplyEnv overlays HERALD_* variables from environ (as os.Environ returns
// them) onto c. HERALD_NATS_URL, HERALD_JWT_SECRET, HERALD_PRODUCER_KEYS and
// HERALD_DELIVERY are short names; every field also has the name of its YAML
// path, upper-cased with "." replaced by "_" (HERALD_EDGE_ACK_WAIT).
// Unknown HERALD_* variables are errors.
func (c *Config) ApplyEnv(environ []string) error {
	paths := map[string]string{}
	for _, p := range Paths() {
		paths["HERALD_"+strings.ToUpper(strings.ReplaceAll(p, ".", "_"))] = p
	}
	for k, v := range envAliases {
		paths[k] = v
	}
	var errs []error
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "HERALD_") {
			continue
		}
		path, ok := paths[name]
		if !ok {
			errs = append(errs, fmt.Errorf("config: unknown environment variable %s", name))
			continue
		}
		if err := c.Set(path, val); err != nil {
			errs = append(errs, fmt.Errorf("%w (from %s)", err, name))
		}
	}
	return errors.Join(errs...)
}

// Paths lists every settable YAML path, such as "edge.ack_wait".
func Paths() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, prefix+tag+".")
				continue
			}
			out = append(out, prefix+tag)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// field returns the field at a YAML path, settable.
func (c *Config) field(path string) (reflect.Value, error) {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return v, fmt.Errorf("config: unknown setting %q", path)
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return v, fmt.Errorf("config: unknown setting %q", path)
		}
	}
	return v, nil
}

// Get returns the value at a YAML path in the form Set takes (a duration in
// Go syntax, a list comma-separated, a map key=value pairs); "" for an unknown path.
func (c *Config) Get(path string) string {
	v, err := c.field(path)
	if err != nil {
		return ""
	}
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	case v.Kind() == reflect.Map:
		parts := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			parts = append(parts, fmt.Sprint(k.Interface())+"="+fmt.Sprint(v.MapIndex(k).Interface()))
		}
		slices.Sort(parts)
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// Set assigns the string form of a value to the field at a YAML path.
// Durations use Go syntax ("30s"), lists are comma-separated, maps are
// comma-separated key=value pairs.
func (c *Config) Set(path, value string) error {
	v, err := c.field(path)
	if err != nil {
		return err
	}
	bad := func(err error) error {
		return &FieldError{Path: path, Value: value, Msg: err.Error()}
	}
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(value)
		if err != nil {
			return bad(err)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(value)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return bad(errors.New("not a whole number"))
		}
		v.SetInt(n)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad(errors.New("not true or false"))
		}
		v.SetBool(b)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String:
		m := map[string]string{}
		for _, kv := range strings.Split(value, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return bad(errors.New("not a comma-separated list of key=value pairs"))
			}
			m[k] = val
		}
		v.Set(reflect.ValueOf(m))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var list []string
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("config: %s has an unsupported type", path)
	}
	return nil
}
