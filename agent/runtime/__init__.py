"""The model runtime: the ChatRuntime contract (``base``) and its llama.cpp engine.

``llama.LlamaRuntime`` runs a GGUF; ``formats`` renders each model family natively;
``decision`` parses and validates what the model decided.
"""
