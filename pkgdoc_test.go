package tubfarm

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs checks that every package in the module has a package
// comment, so that `go doc` says what each one is for.
func TestPackageDocs(t *testing.T) {
	seen := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		files, err := filepath.Glob(filepath.Join(path, "*.go"))
		if err != nil {
			return err
		}
		documented := make(map[string]bool) // by package name
		fset := token.NewFileSet()
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			documented[f.Name.Name] = documented[f.Name.Name] || f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != ""
		}
		for pkgName, ok := range documented {
			seen++
			if !ok {
				t.Errorf("package %s in %s has no package comment", pkgName, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 2 {
		t.Fatalf("found only %d packages; is the walk broken?", seen)
	}
}
