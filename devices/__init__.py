"""Device drivers of a store node: receipt printers and payment terminals, and device state.

Knows no other app of the project (architecture: ``stores`` uses ``devices``)."""
