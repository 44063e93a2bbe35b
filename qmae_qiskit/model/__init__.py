"""The model as circuits: validated shape, amplitude loader, ansatz, circuit builder, masks, export."""
