"""Township node (乡镇便民服务中心): clerk windows and store-and-forward hub. Its program lands with the next issue."""
