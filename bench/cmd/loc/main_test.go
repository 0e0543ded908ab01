package main

import "testing"

func TestCount(t *testing.T) {
	src := "// Package p.\npackage p\n\n/* a\nblock */\nvar x = `two\nlines` // trailing\n\nfunc f() {\n}\n"
	// package p; var x = `two; lines`; func f() {; }
	if got := Count([]byte(src)); got != 5 {
		t.Errorf("Count = %d, want 5", got)
	}
}
