//! The on-device user state: watch history, impressions, onboarding picks and settings.
