// Command ringfuse serves a directory as a FUSE filesystem (a passthrough),
// over /dev/fuse or FUSE-over-io_uring.
//
//	ringfuse SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]
//	ringfuse mount [-o OPTIONS] [--stats] SOURCE MOUNTPOINT
//
// The first form is libfuse's, which mount(8) and fstab use through
// mount.fuse3 (type fuse.ringfuse): it goes to the background once the mount
// is ready. The second stays in the foreground.
package main

import (
	"errors"
	"fmt"
	"os"
)

const usage = `ringfuse: serve a directory as a FUSE filesystem, over /dev/fuse or io_uring

Usage:
  ringfuse SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s] [--stats]
      Mount the directory SOURCE at MOUNTPOINT (a passthrough filesystem) and
      go to the background once the mount is ready, as libfuse daemons do.
      mount(8) and fstab start it this way through mount.fuse3:
        mount -t fuse.ringfuse SOURCE MOUNTPOINT -o io_uring
        SOURCE MOUNTPOINT fuse.ringfuse defaults,io_uring 0 0   (/etc/fstab)
      -f  stay in the foreground
      -d  log every request to standard error (implies -f)
      -s  serve one request at a time per channel
      -o  mount options, comma separated; "ringfuse mount --help" lists them
      SIGINT, SIGTERM and SIGHUP unmount and exit; SIGUSR1 prints statistics.
      Without root it mounts through fusermount3 (Debian package fuse3);
      -o auto_unmount unmounts even if the daemon is killed.
  ringfuse mount [-o OPTIONS] [--stats] [--debug] SOURCE MOUNTPOINT
      The same, always in the foreground.
  ringfuse --version
      Print the version and the FUSE protocol version.
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
		err = runMount(os.Args[2:], true)
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		return
	case "-V", "-version", "--version":
		printVersion()
		return
	default:
		err = runMount(os.Args[1:], false)
	}
	var exit exitCode
	switch {
	case errors.As(err, &exit):
		os.Exit(int(exit)) // the daemon said why already
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "ringfuse: %v\n\n%s", err, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "ringfuse: %v\n", err)
		os.Exit(1)
	}
}
