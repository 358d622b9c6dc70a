package config

import (
	"flag"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The configuration reference, docs/configuration.md, is generated from the
// doc comments of Config's fields and from Default(), so that it cannot
// drift from the code: this test fails when the file is not what the code
// makes of it, and `go test ./config -run TestReference -update` rewrites
// it.

var update = flag.Bool("update", false, "rewrite docs/configuration.md")

const referencePath = "../docs/configuration.md"

func TestReference(t *testing.T) {
	got, missing := reference(t)
	if len(missing) > 0 {
		t.Errorf("fields without a doc comment (the reference is made of them): %s", strings.Join(missing, ", "))
	}
	if *update {
		if err := os.WriteFile(referencePath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("%v (run go test ./config -run TestReference -update)", err)
	}
	if string(want) != got {
		t.Fatalf("%s is out of date: run go test ./config -run TestReference -update", referencePath)
	}
}

// sectionDirs are the packages whose types make up Config: this one and
// the owners of its sections.
var sectionDirs = []string{".", "../streams", "../ingest", "../edge/token", "../edge"}

// fieldDocs maps "pkg.Type.Field" to the field's doc comment, for every
// struct type declared in the non-test files of sectionDirs.
func fieldDocs(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	docs := map[string]string{}
	for _, dir := range sectionDirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			pkg := f.Name.Name
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				for _, fld := range st.Fields.List {
					text := fld.Doc.Text()
					if text == "" {
						text = fld.Comment.Text()
					}
					for _, n := range fld.Names {
						docs[pkg+"."+ts.Name.Name+"."+n.Name] = strings.Join(strings.Fields(text), " ")
					}
				}
				return false
			})
		}
	}
	return docs
}

// typeKey is the fieldDocs prefix of a struct type: its package's name
// (the last element of its path) and its name.
func typeKey(t reflect.Type) string {
	return path.Base(t.PkgPath()) + "." + t.Name()
}

// reference renders docs/configuration.md and lists the settable fields
// that have no doc comment.
func reference(t *testing.T) (string, []string) {
	docs := fieldDocs(t)
	var b strings.Builder
	var missing []string
	b.WriteString(`# Configuration reference

Generated from the doc comments of ` + "`config.Config`" + ` by
` + "`go test ./config -run TestReference -update`" + `; do not edit by hand.

Every setting is read, lowest first, from its default, a YAML file
(` + "`--config`" + `), a ` + "`HERALD_*`" + ` environment variable and a flag
(` + "`--set path=value`" + `, or the named flags of each command). The variable of
a setting is its YAML path upper-cased with ` + "`.`" + ` replaced by ` + "`_`" + `, after
` + "`HERALD_`" + `. Durations use Go's syntax (` + "`30s`" + `, ` + "`2h`" + `); lists are
comma-separated in variables and flags. Unknown keys and variables are
errors, and ` + "`herald`" + ` refuses to start with a bad value, naming its path.
`)
	aliases := map[string]string{}
	for k, v := range envAliases {
		aliases[v] = k
	}
	def := reflect.ValueOf(Default())
	ct := def.Type()
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		tag := yamlName(f)
		if tag == "" {
			continue
		}
		if f.Type.Kind() != reflect.Struct {
			continue // top-level scalars are listed in their own section below
		}
		fmt.Fprintf(&b, "\n## `%s`\n\n", tag)
		if d := docs["config.Config."+f.Name]; d != "" {
			b.WriteString(doc.Synopsis(d) + "\n\n")
		}
		b.WriteString("| setting | default | meaning |\n|---|---|---|\n")
		sub := def.Field(i)
		for j := 0; j < f.Type.NumField(); j++ {
			sf := f.Type.Field(j)
			name := yamlName(sf)
			if name == "" {
				continue
			}
			path := tag + "." + name
			d := docs[typeKey(f.Type)+"."+sf.Name]
			if d == "" {
				missing = append(missing, path)
			}
			env := "HERALD_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
			if a, ok := aliases[path]; ok && a != env {
				env += ", " + a
			}
			fmt.Fprintf(&b, "| `%s` (`%s`) | %s | %s |\n", path, env, defaultText(sub.Field(j)), escapeCell(d))
		}
	}
	b.WriteString("\n## Top level\n\n| setting | default | meaning |\n|---|---|---|\n")
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		tag := yamlName(f)
		if tag == "" || f.Type.Kind() == reflect.Struct {
			continue
		}
		d := docs["config.Config."+f.Name]
		if d == "" {
			missing = append(missing, tag)
		}
		env := "HERALD_" + strings.ToUpper(tag)
		fmt.Fprintf(&b, "| `%s` (`%s`) | %s | %s |\n", tag, env, defaultText(def.Field(i)), escapeCell(d))
	}
	slices.Sort(missing)
	return b.String(), missing
}

func yamlName(f reflect.StructField) string {
	tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
	if tag == "-" {
		return ""
	}
	return tag
}

// defaultText is a default value as a reference cell.
func defaultText(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		if d == 0 {
			return "`0`"
		}
		return "`" + shortDuration(d) + "`"
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return "(empty)"
		}
	case reflect.Slice:
		if v.Len() == 0 {
			return "(empty)"
		}
	}
	return "`" + strings.Trim(fmt.Sprint(v.Interface()), "[]") + "`"
}

// shortDuration drops the zero units that time.Duration.String keeps
// ("168h0m0s" is "168h").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// escapeCell keeps a doc comment one Markdown table cell: a | would end
// it and a <word> would be read as an HTML tag.
func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}
