print("jobd: not built yet")
