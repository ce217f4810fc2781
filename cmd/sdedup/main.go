// Command sdedup: see 'sdedup --help' and docs/sdedup.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
