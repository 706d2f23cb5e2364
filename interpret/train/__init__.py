"""Training: the gist's exact trainer and the batched one (LSTM, GRU, RNN), through one loop."""
