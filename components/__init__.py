"""Thin KFP components, one per pipeline step; all logic lives in emotion_ai."""
