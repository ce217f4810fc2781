// Command sunion: see 'sunion --help' and docs/sunion.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
