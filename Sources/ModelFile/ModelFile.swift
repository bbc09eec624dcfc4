// ModelFile: see docs/ARCHITECTURE.md. (module placeholder until its issue lands)
