// Command swindow: see 'swindow --help' and docs/swindow.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
