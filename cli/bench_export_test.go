package cli

// PrintBench prints a bench report as `remediator bench` does.
var PrintBench = printBench
