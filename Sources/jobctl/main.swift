print("jobctl: not built yet")
