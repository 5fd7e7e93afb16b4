// The GRPCLite module; its sources land with the work that fills it.
