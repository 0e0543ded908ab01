// Command ringfuse mounts a directory through the ringfuse FUSE server,
// over /dev/fuse or FUSE-over-io_uring.
//
//	ringfuse mount [-o OPTIONS] [--stats] SOURCE MOUNTPOINT
package main

import (
	"fmt"
	"os"
)

const usage = `ringfuse: a FUSE server over /dev/fuse and io_uring

Usage:
  ringfuse mount [-o OPTIONS] [--stats] [--debug] SOURCE MOUNTPOINT
      Serve the directory SOURCE at MOUNTPOINT (a passthrough filesystem), in
      the foreground, until SIGINT or SIGTERM unmounts it. SIGUSR1 prints
      statistics to standard error. Run "ringfuse mount --help" for options.
  ringfuse help
      Show this text.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "mount":
		err = runMount(os.Args[2:])
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "ringfuse: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ringfuse: %v\n", err)
		os.Exit(1)
	}
}
