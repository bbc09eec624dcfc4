// edgecli: the command line of rram-edge.
print("edgecli")
