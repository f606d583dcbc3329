"""Import Hugging Face and GGUF models into APR v2; export APR v2 to Hugging Face and GGUF."""
