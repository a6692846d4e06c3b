"""The emotion-ai KFP pipeline and its runners."""
