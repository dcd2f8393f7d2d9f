"""Walk-forward retraining (``ploutos walkforward``) and production retraining
(``ploutos retrain``): retrain on data strictly before each trading period (issue 12)."""
