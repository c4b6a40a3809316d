package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// notInBinary are the module's directories the daemon does not link: test
// support and the load harness.
var notInBinary = []string{"internal/awstest", "internal/natstest", "internal/sourcetest", "internal/kindtest", "cmd/switchyard-bench"}

// Package initialisation runs before every command, `version` included: a
// regular expression compiled into a package-level variable is paid for
// at every start (those with counted repetitions, {1,255}, cost the most).
// They are compiled on first use instead (sync.OnceValue).
func TestNoRegexpCompiledAtStart(t *testing.T) {
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		for _, skip := range notInBinary {
			if rel == skip {
				return filepath.SkipDir
			}
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			ast.Inspect(g, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.FuncLit:
					return false // runs when called, not at start
				case *ast.SelectorExpr:
					if x, ok := n.X.(*ast.Ident); ok && x.Name == "regexp" && strings.HasPrefix(n.Sel.Name, "MustCompile") {
						t.Errorf("%s: regexp.%s in a package-level variable runs at every start: compile it on first use (sync.OnceValue)", fset.Position(n.Pos()), n.Sel.Name)
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
