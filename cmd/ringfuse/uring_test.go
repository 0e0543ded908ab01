package main

import "testing"

// TestUringFileIODefault checks that the daemon does the passthrough's
// reads and writes on the rings unless told not to, and that the file I/O
// options need io_uring.
func TestUringFileIODefault(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want bool
	}{
		{[]string{"io_uring"}, true},
		{[]string{"io_uring,io_uring_file_io"}, true},
		{[]string{"io_uring,io_uring_no_file_io"}, false},
		{[]string{"io_uring,io_uring_file_io,io_uring_no_file_io"}, false},
	} {
		c, err := parseOptions(tc.opts, "/src")
		if err != nil {
			t.Fatalf("%v: %v", tc.opts, err)
		}
		if err := applyUring(c); err != nil {
			t.Fatalf("%v: %v", tc.opts, err)
		}
		if c.session.Uring == nil || c.session.Uring.FileIO != tc.want {
			t.Errorf("-o %v: ring options %+v, want FileIO %v", tc.opts, c.session.Uring, tc.want)
		}
	}
	for _, o := range []string{"io_uring_file_io", "io_uring_no_file_io"} {
		if _, err := parseOptions([]string{o}, "/src"); err == nil {
			t.Errorf("-o %s without io_uring was accepted", o)
		}
	}
}
