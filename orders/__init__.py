"""Cart, checkout, orders and their state machine, order emails (arrives with the cart issue)."""
