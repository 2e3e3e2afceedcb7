"""助企 (zhuqi): shared runtime and console for the campaign services."""
