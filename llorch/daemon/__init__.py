"""`llorchd`: the daemon's command line, its settings file and its wiring, at the top of the
import graph (it assembles every other package; nothing imports it)."""
