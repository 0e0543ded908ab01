// Command loc counts the lines of Go source files that hold code: lines
// that are neither blank nor only comment, as the line counts in
// docs/nodefs.md do.
//
//	loc FILE...
package main

import (
	"fmt"
	"go/scanner"
	"go/token"
	"log"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: loc FILE...")
	}
	total := 0
	for _, name := range os.Args[1:] {
		src, err := os.ReadFile(name)
		if err != nil {
			log.Fatal(err)
		}
		n := Count(src)
		total += n
		fmt.Printf("%6d %s\n", n, name)
	}
	if len(os.Args) > 2 {
		fmt.Printf("%6d total\n", total)
	}
}

// Count returns the number of lines of src that hold a token other than a
// comment.
func Count(src []byte) int {
	fset := token.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, 0) // no ScanComments: comments are skipped
	lines := map[int]bool{}
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return len(lines)
		}
		if tok == token.SEMICOLON && lit == "\n" {
			continue // inserted at a line's end, after a counted token
		}
		first := file.Line(pos)
		for i := 0; i <= strings.Count(lit, "\n"); i++ {
			lines[first+i] = true // a raw string's every line
		}
	}
}
